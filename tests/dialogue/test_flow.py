"""The whole learner journey through `Dialogue.handle`, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.dialogue import Dialogue, prompts
from bot.domain import ChannelName, InboundMessage
from bot.store.tables import answers, deliveries, enrollments
from tests.dialogue.conftest import Chat, joined


async def test_first_contact_gets_a_hint_not_silence(chat: Chat) -> None:
    assert "send JOIN followed by your cohort code" in await chat.say("hello")


async def test_unknown_code_is_named(chat: Chat) -> None:
    text = await chat.say("JOIN NOPE42")
    assert "No cohort has the code NOPE42" in text
    assert (await chat.learner()).locale is None


async def test_whole_journey(chat: Chat, dialogue: Dialogue) -> None:
    replies = await chat.send("join team1")
    assert "Welcome to Team one!" in replies[0].text
    menu = replies[-1]
    assert [b.payload for b in menu.buttons] == [f"p:lang:lang:{c}" for c in dialogue.locales]
    assert [b.label for b in menu.buttons][:3] == ["English", "Français", "Español"]

    assert "What is your role?" in await chat.say("English")
    assert "Which country" in await chat.say("", payload="role:technical")
    assert "What is your gender?" in await chat.say("Kenya")
    lesson = await chat.send("SKIP")
    texts = "\n".join(reply.text for reply in lesson)
    assert "Start with users" in texts and "Where do you start?" in texts
    question = prompts.for_question("users", "q1")  # the buttons name their question
    assert [b.payload for b in lesson[-1].buttons] == [f"p:{question}:ans:{n}" for n in (1, 2, 3)]

    learner = await chat.learner()
    assert (learner.locale, learner.profile_role, learner.profile_country) == (
        "en",
        "technical",
        "KE",
    )
    assert learner.profile_gender is None

    wrong = await chat.say("a)")
    assert "Rules come later." in wrong and "Try again." in wrong
    right = await chat.say("B")
    assert "Yes: users first." in right and "Collect all the data you can." in right
    done = await chat.say("faux")
    # Its one teaching lesson is done, so the course is; the survey is counted on its own.
    assert "Right: only what you need." in done
    assert "Congratulations, you have finished the course!" in done
    assert "Send NEXT for your next lesson." in done

    progress = await chat.say("PROGRESS")
    assert "You have completed 1 of 1 lesson." in progress
    assert "Check-ins and survey done: 0 of 1." in progress
    assert "Quiz score: 50%" in progress  # q1 wrong at first, q2 right at first

    survey = await chat.say("next")
    assert "Your view" in survey and "How useful was it?" in survey
    assert "What will you change?" in await chat.say("4")
    finished = await chat.say("I will ask users first")
    # The pathway's next course starts at once in a self-paced cohort.
    assert "Thank you! You have done everything in this course." in finished
    assert "Course complete! Your next course is Next steps." in finished
    assert "Make a plan" in finished

    types = [event.type for event in await chat.events(learner.learner_key)]
    assert types[:2] == ["enrolled", "language_changed"]
    assert types.count("lesson_delivered") == 3
    assert types.count("answered") == 5
    assert types.count("lesson_completed") == 2
    assert types.count("course_completed") == 1

    async with dialogue.engine.connect() as conn:
        sent = (await conn.execute(select(deliveries).order_by(deliveries.c.id))).all()
        graded = (await conn.execute(select(answers).order_by(answers.c.id))).all()
        enrollment = (await conn.execute(select(enrollments))).one()
    assert [(d.lesson_id, d.kind, d.status, d.locale) for d in sent] == [
        ("users", "lesson", "sent", "en"),
        ("survey", "lesson", "sent", "en"),
        ("plan", "lesson", "sent", "en"),
    ]
    assert [(a.question_id, a.attempt, a.response, a.correct) for a in graded] == [
        ("q1", 1, "1", False),
        ("q1", 2, "2", True),
        ("q2", 1, "false", True),
        ("q1", 1, "4", None),
        ("q2", 1, "I will ask users first", None),
    ]
    assert (enrollment.course_id, enrollment.lesson_id, enrollment.question_index) == (
        "next-steps",
        "plan",
        0,
    )


async def test_lesson_event_logs_the_locale_delivered(chat: Chat) -> None:
    # French is chosen, but the fixture course has no French translation: English is sent.
    await joined(chat, locale_choice="Français")
    learner = await chat.learner()
    assert learner.locale == "fr"
    delivered = [e for e in await chat.events(learner.learner_key) if e.type == "lesson_delivered"]
    assert [(e.lesson_id, e.locale, e.channel) for e in delivered] == [("users", "en", "sms")]


async def test_three_wrong_answers_show_the_right_one_and_move_on(chat: Chat) -> None:
    await joined(chat)
    assert "Try again." in await chat.say("1")
    assert "Try again." in await chat.say("3")
    third = await chat.say("1")
    assert "The right answer is: 2) With the users" in third
    assert "Collect all the data you can." in third
    learner = await chat.learner()
    answered = [e for e in await chat.events(learner.learner_key) if e.type == "answered"]
    assert [(e.question_id, e.attempt, e.correct) for e in answered] == [
        ("q1", 1, False),
        ("q1", 2, False),
        ("q1", 3, False),
    ]


async def test_next_waits_for_the_open_question(chat: Chat) -> None:
    await joined(chat)
    text = await chat.say("NEXT")
    assert "Please answer this question first" in text and "Where do you start?" in text


async def test_unclear_answer_repeats_the_question(chat: Chat) -> None:
    await joined(chat)
    text = await chat.say("banana")
    assert "Please reply with the number of your choice." in text
    assert "Where do you start?" in text
    learner = await chat.learner()
    assert not [e for e in await chat.events(learner.learner_key) if e.type == "answered"]


async def test_deep_link_and_bare_code_join(dialogue: Dialogue) -> None:
    assert "Welcome to Team one!" in await Chat(dialogue, "tg-1").say("/start TEAM1")
    assert "Welcome to Team one!" in await Chat(dialogue, "tg-2").say("TEAM1")
    assert "No cohort has the code XYZ99" in await Chat(dialogue, "tg-3").say("XYZ99")


async def test_language_is_not_asked_again_and_can_be_changed(chat: Chat) -> None:
    await joined(chat)
    menu = await chat.send("LANGUAGE")
    assert menu[-1].buttons[0].payload == "p:lang:lang:en"
    await chat.send("", payload="lang:sw")
    assert (await chat.learner()).locale == "sw"


async def test_duplicate_provider_id_changes_nothing(dialogue: Dialogue) -> None:
    message = InboundMessage(ChannelName.SMS, "+15550111", "JOIN TEAM1", provider_id="SMdup")
    assert await dialogue.handle(message)
    assert await dialogue.handle(message) == []
    async with dialogue.engine.connect() as conn:
        assert len((await conn.execute(select(enrollments))).all()) == 1


async def test_help_lists_commands_in_the_learners_language(chat: Chat) -> None:
    await joined(chat)
    text = await chat.say("help")
    for word in ("NEXT", "PROGRESS", "LANGUAGE", "STOP", "START", "DELETE MY DATA"):
        assert word in text


async def test_last_inbound_at_is_kept_to_the_minute(chat: Chat, dialogue: Dialogue) -> None:
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    now = [start]
    dialogue.clock = lambda: now[0]
    await chat.send("hello")
    now[0] = start + timedelta(seconds=30)
    await chat.send("hello again")
    assert (await chat.learner()).last_inbound_at == start
    now[0] = start + timedelta(minutes=2)
    await chat.send("and again")
    assert (await chat.learner()).last_inbound_at == start + timedelta(minutes=2)
