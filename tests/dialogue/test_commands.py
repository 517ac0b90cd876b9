"""Commands in every shipped locale: STOP/START semantics, DELETE MY DATA, HELP, LANGUAGE."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.dialogue import Dialogue
from bot.dialogue.keywords import COMMAND_WORDS, Command
from bot.store.tables import answers, learners
from tests.dialogue.conftest import Chat, joined

LOCALES = sorted(COMMAND_WORDS)


async def test_stop_then_nothing_until_start(chat: Chat) -> None:
    await joined(chat)
    stopped = await chat.send("stop")
    assert len(stopped) == 1  # one confirmation, naming the START word
    learner = await chat.learner()
    assert learner.status == "stopped"
    for text in ("NEXT", "2", "HELP", "hello", "YES", "JOIN TEAM1", "DELETE MY DATA"):
        assert await chat.send(text) == [], text
    assert (await chat.learner()).status == "stopped"

    resumed = await chat.send("START")
    assert (await chat.learner()).status == "active"
    assert "Where do you start?" in resumed[-1].text  # the open question again
    types = [e.type for e in await chat.events(learner.learner_key)]
    assert types.count("stopped") == 1 and types.count("restarted") == 1


@pytest.mark.parametrize("locale", LOCALES)
async def test_every_stop_and_start_word(chat: Chat, locale: str) -> None:
    await joined(chat)
    table = COMMAND_WORDS[locale]
    for stop in table[Command.STOP]:
        for start in table[Command.START]:
            assert len(await chat.send(stop.lower())) == 1, stop
            assert (await chat.learner()).status == "stopped", stop
            assert await chat.send("2") == []
            assert await chat.send(f"/{start}"), start
            assert (await chat.learner()).status == "active", start


async def test_stop_confirmation_names_start(chat: Chat) -> None:
    await joined(chat)
    assert "Send START at any time to resume." in await chat.say("unsubscribe")


async def test_free_text_starting_with_stop_is_not_a_command(chat: Chat) -> None:
    await joined(chat)
    await chat.send("2")
    await chat.send("false")
    await chat.send("NEXT")
    await chat.send("5")
    await chat.say("Stop printing forms nobody reads")
    assert (await chat.learner()).status == "active"


@pytest.mark.parametrize("locale", LOCALES)
async def test_commands_are_recognised_in_every_locale(chat: Chat, locale: str) -> None:
    await joined(chat)
    table = COMMAND_WORDS[locale]
    for command in (Command.HELP, Command.PROGRESS, Command.NEXT, Command.LANGUAGE):
        for word in table[command]:
            replies = await chat.send(word)
            text = "\n".join(reply.text for reply in replies)
            assert replies and "did not understand" not in text, word
            if command == Command.LANGUAGE:
                assert replies[-1].buttons[0].payload == "p:lang:lang:en"
                await chat.send("1")
            elif command == Command.HELP:
                assert "STOP" in text
            elif command == Command.PROGRESS:
                assert "You have completed 0 of 1 lesson." in text
            else:
                assert "Please answer this question first" in text


@pytest.mark.parametrize("locale", LOCALES)
async def test_join_and_skip_in_every_locale(dialogue: Dialogue, locale: str) -> None:
    chat = Chat(dialogue, f"+1555{locale}")
    await chat.send(f"{COMMAND_WORDS[locale][Command.JOIN][0]} team1")
    await chat.send(str(LOCALES.index(locale) + 1))
    skip = COMMAND_WORDS[locale][Command.SKIP][0]
    await chat.send(skip)
    await chat.send(skip.lower())
    lesson = await chat.say(skip)
    assert "Where do you start?" in lesson
    learner = await chat.learner()
    assert learner.profile_role is None and learner.dialogue_state is None


async def test_help_uses_the_learners_keywords(chat: Chat) -> None:
    await chat.send("JOIN TEAM1")
    await chat.send("", payload="lang:fr")
    text = await chat.say("AIDE")
    assert "ARRÊT" in text and "SUIVANT" in text


async def test_arabic_progress_isolates_numbers(chat: Chat) -> None:
    await chat.send("انضم TEAM1")
    await chat.send("", payload="lang:ar")
    await chat.send("تخطي")
    await chat.send("تخطي")
    await chat.send("تخطي")
    progress = await chat.say("تقدمي")
    assert "\u2068" in progress and "\u2069" in progress  # numbers isolated in RTL text


async def test_delete_asks_then_cancels_on_anything_else(chat: Chat) -> None:
    await joined(chat)
    prompt = await chat.send("DELETE MY DATA")
    assert "Reply YES to confirm" in prompt[0].text
    assert [b.payload for b in prompt[0].buttons] == ["p:del:yes", "p:del:no"]
    assert "Deletion cancelled" in await chat.say("maybe later")
    learner = await chat.learner()
    assert learner.status == "active" and learner.locale == "en"


async def test_delete_removes_personal_data_and_leaves_a_tombstone(
    chat: Chat, dialogue: Dialogue
) -> None:
    await chat.send("JOIN TEAM1")
    await chat.send("1")
    await chat.send("2")  # role: manager
    await chat.send("Kenya")
    await chat.send("1")  # gender: woman
    for text in ("2", "false", "NEXT", "4", "My office, my colleague Amina"):
        await chat.send(text)
    before = await chat.learner()
    assert before.profile_gender == "female"

    await chat.send("supprimer mes données")
    goodbye = await chat.send("oui")
    assert len(goodbye) == 1 and "deleted" in goodbye[0].text

    assert await chat.learner() is None  # no row has this address any more
    async with dialogue.engine.connect() as conn:
        row = (await conn.execute(select(learners).where(learners.c.id == before.id))).one()
        responses = [a.response for a in (await conn.execute(select(answers))).all()]
    assert row.status == "deleted"
    assert row.address == f"deleted:{before.learner_key}"
    assert (row.locale, row.profile_role, row.profile_country, row.profile_gender) == (
        None,
        None,
        None,
        None,
    )
    assert "My office, my colleague Amina" not in responses
    assert "" in responses and "4" in responses  # the rating is kept, the reflection blanked
    last = (await chat.events(before.learner_key))[-1]
    assert (last.type, last.learner_key) == ("data_deleted", before.learner_key)

    # Writing again starts over as a brand-new learner.
    assert "send JOIN" in await chat.say("hello")
    again = await chat.learner()
    assert again.id != before.id and again.learner_key != before.learner_key
