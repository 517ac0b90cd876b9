"""From the public sandbox, JOIN reaches only cohorts open to it; a closed one looks unknown."""

from __future__ import annotations

from sqlalchemy import update

from bot.dialogue import Dialogue
from bot.domain import ChannelName
from bot.store.tables import cohorts
from tests.dialogue.conftest import Chat

SANDBOX_ADDRESS = "web-0123456789abcdef"


def sandbox_chat(dialogue: Dialogue, address: str = SANDBOX_ADDRESS) -> Chat:
    return Chat(dialogue, address=address, channel=ChannelName.SANDBOX)


async def open_team1(dialogue: Dialogue, value: bool = True) -> None:
    async with dialogue.engine.begin() as conn:
        await conn.execute(
            update(cohorts).where(cohorts.c.join_code == "TEAM1").values(open_to_sandbox=value)
        )


async def test_the_sandbox_cannot_join_a_closed_cohort_and_is_told_as_for_an_unknown_code(
    dialogue: Dialogue,
) -> None:
    chat = sandbox_chat(dialogue)

    closed = await chat.say("JOIN TEAM1")
    unknown = await chat.say("JOIN NOSUCH")

    assert closed == unknown.replace("NOSUCH", "TEAM1")
    assert "No cohort has the code" in closed
    assert [e.type for e in await chat.events((await chat.learner()).learner_key)] == []


async def test_a_deep_link_to_a_closed_cohort_from_the_sandbox_joins_nothing(
    dialogue: Dialogue,
) -> None:
    chat = sandbox_chat(dialogue)

    reply = await chat.say("/start TEAM1")

    assert "Welcome to" not in reply
    # /start with an unknown code is the same answer: a plain restart hint.
    assert reply == await sandbox_chat(dialogue, "web-fedcba9876543210").say("/start NOSUCH")


async def test_a_bare_code_to_a_closed_cohort_from_the_sandbox_joins_nothing(
    dialogue: Dialogue,
) -> None:
    reply = await sandbox_chat(dialogue).say("TEAM1")

    assert "Welcome to" not in reply


async def test_the_sandbox_joins_a_cohort_once_it_is_open_to_it(dialogue: Dialogue) -> None:
    await open_team1(dialogue)

    reply = await sandbox_chat(dialogue).say("JOIN TEAM1")

    assert "Welcome to Team one!" in reply


async def test_the_refusal_is_in_the_learners_language(dialogue: Dialogue) -> None:
    await dialogue.create_cohort(
        name="Demo", join_code="DEMO", course_ids=["basics"], open_to_sandbox=True
    )
    chat = sandbox_chat(dialogue)
    await chat.send("JOIN DEMO")
    await chat.send(payload="lang:fr")

    reply = await chat.say("JOIN TEAM1")

    assert reply.startswith("Aucun groupe n'a le code")


async def test_other_channels_join_a_closed_cohort_as_before(dialogue: Dialogue) -> None:
    reply = await Chat(dialogue).say("JOIN TEAM1")

    assert "Welcome to Team one!" in reply
