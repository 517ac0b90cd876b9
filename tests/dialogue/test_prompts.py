"""One open prompt: a button or a reply answers the prompt it belongs to, commands ask it again."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.dialogue import Dialogue, prompts
from bot.dialogue.outbound import LessonTarget
from bot.domain import OutboundMessage
from bot.store.db import utcnow
from bot.store.tables import answers, enrollments
from tests.dialogue.conftest import Chat, joined

Q1 = prompts.for_question("users", "q1")
Q2 = prompts.for_question("users", "q2")
CLOSED = "That question has closed."


def last_prompt(replies: list[OutboundMessage]) -> str | None:
    return prompts.asked(replies[-1]) if replies else None


async def answer_count(dialogue: Dialogue) -> int:
    async with dialogue.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(answers))).scalar_one())


async def test_next_during_the_language_menu_asks_the_menu_again(chat: Chat) -> None:
    await chat.send("JOIN TEAM1")

    replies = await chat.send("NEXT")

    # Today NEXT sent the first question over the open menu; "2" then picked French.
    assert all("question" not in reply.meta for reply in replies)
    assert last_prompt(replies) == prompts.LANGUAGE
    assert "Please answer this question first:" in replies[0].text
    assert "Langue choisie : Français." in await chat.say("2")  # the menu was shown last


async def test_progress_during_the_language_menu_then_the_menu_again(chat: Chat) -> None:
    await chat.send("JOIN TEAM1")

    replies = await chat.send("PROGRESS")

    # The survey is counted on its own (issue 9 §1): basics has one teaching lesson.
    assert "You have completed 0 of 1 lesson." in replies[0].text
    assert last_prompt(replies) == prompts.LANGUAGE  # today the menu never came back
    assert (await chat.learner()).dialogue_state == "language>profile"


async def test_buttons_of_an_answered_question_are_closed(chat: Chat, dialogue: Dialogue) -> None:
    lesson = await joined(chat)
    assert "Where do you start?" in lesson
    assert "Yes: users first." in await chat.say(payload=f"p:{Q1}:ans:2")

    replies = await chat.send(payload=f"p:{Q1}:ans:1")  # question 1's keyboard, pressed again

    assert replies[0].text == CLOSED
    assert last_prompt(replies) == Q2  # the open question, asked again
    assert await answer_count(dialogue) == 1


async def test_an_old_format_question_button_never_answers(chat: Chat, dialogue: Dialogue) -> None:
    await joined(chat)

    replies = await chat.send(payload="ans:2")  # a keyboard sent before prompts had identities

    assert replies[0].text == CLOSED and last_prompt(replies) == Q1
    assert await answer_count(dialogue) == 0
    # An old language button still works while a language menu is open: it cannot be mistaken.
    await chat.send("LANGUAGE")
    assert "Langue choisie" in await chat.say(payload="lang:fr")


async def test_a_question_button_during_the_language_menu_is_not_a_language(
    chat: Chat, dialogue: Dialogue
) -> None:
    await joined(chat)
    await chat.send("LANGUAGE")

    replies = await chat.send(payload=f"p:{Q1}:ans:2")  # the question is still the open one

    # It answers the question it belongs to, then the menu comes again (it was interrupted).
    assert "Yes: users first." in replies[0].text
    assert last_prompt(replies) == prompts.LANGUAGE
    assert (await chat.learner()).locale == "en"
    assert await answer_count(dialogue) == 1
    stale = await chat.send(payload=f"p:{Q1}:ans:2")
    assert stale[0].text == CLOSED and await answer_count(dialogue) == 1


async def test_a_command_over_an_open_question_asks_it_again(chat: Chat) -> None:
    await joined(chat)

    for command in ("HELP", "PROGRESS", "JOIN"):
        replies = await chat.send(command)
        assert last_prompt(replies) == Q1, command
        assert len(replies) == 2, command


async def test_a_language_chosen_over_an_open_question_then_the_question(chat: Chat) -> None:
    await joined(chat)
    await chat.send("LANGUAGE")

    replies = await chat.send("2")  # the menu was shown last: "2" is Français, not option 2

    assert "Langue choisie : Français." in replies[0].text
    assert last_prompt(replies) == Q1


async def test_the_zone_over_the_language_menu_then_the_menu_again(chat: Chat) -> None:
    await chat.send("JOIN TEAM1")
    await chat.send("ZONE")
    assert (await chat.learner()).dialogue_state == "zone^language>profile"

    replies = await chat.send("SKIP")

    assert "Time zone unchanged" in replies[0].text
    assert last_prompt(replies) == prompts.LANGUAGE
    assert "What is your role?" in await chat.say("1")  # and joining goes on


async def test_a_stale_button_with_nothing_open_is_only_a_note(chat: Chat) -> None:
    await joined(chat)
    await chat.send(payload=f"p:{Q1}:ans:2")
    # "users" is basics' only teaching lesson (the survey is counted on its own), so its last
    # answer finishes the course: nothing is open after it.
    done = await chat.say(payload=f"p:{Q2}:tf:false")
    assert "Right: only what you need." in done and "finished the course" in done

    assert await chat.say(payload=f"p:{Q2}:tf:true") == CLOSED


async def test_delete_cancelled_asks_the_open_question_again(chat: Chat) -> None:
    await joined(chat)
    await chat.send("DELETE MY DATA")

    replies = await chat.send(payload="p:del:no")

    assert "Deletion cancelled" in replies[0].text and last_prompt(replies) == Q1


async def test_a_scheduled_question_after_a_menu_takes_the_typed_reply(
    chat: Chat, dialogue: Dialogue
) -> None:
    await chat.send("JOIN TEAM1")  # the language menu is open, and left unanswered
    later = utcnow() + timedelta(minutes=5)
    target = LessonTarget(
        delivery_id=1,
        enrollment_id=1,
        cohort_id=1,
        course_id="basics",
        lesson_id="users",
        learner_key=(await chat.learner()).learner_key,
        learner_locale=None,
        channel=chat.channel,
        address=chat.address,
    )
    prepared = dialogue.prepare_lesson(target, later)
    assert prepared is not None
    assert prompts.asked(prepared.messages[-1]) == Q1  # the dispatcher's buttons name it too
    async with dialogue.engine.begin() as conn:  # what the dispatcher writes once it is sent
        await conn.execute(update(enrollments).values(**prepared.enrollment_values))
    dialogue.clock = lambda: later + timedelta(minutes=1)

    replies = await chat.send("2")  # the question was shown last: option 2, not Français

    assert "Yes: users first." in replies[0].text
    assert (await chat.learner()).locale is None and await answer_count(dialogue) == 1
    assert last_prompt(replies) == prompts.LANGUAGE  # then the menu, still open, again
    assert "Langue choisie" in await chat.say("2")  # which now takes the "2"
