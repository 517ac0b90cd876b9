"""The learning record on the shipped course: progress is the lessons completed (issue 9).

Each test starts from what was observed: a pushed lesson moved the learner's place, the
pre-check graded like a quiz, and a pushed survey finished the course.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.gain import assessment_gains
from bot.dialogue import Dialogue, prompts
from bot.domain import ChannelName
from bot.lessons.models import FreeText, MultipleSelect, Question, Rating, SingleChoice, TrueFalse
from bot.store.tables import enrollments, events, lesson_completions
from bot.trainers import cohorts as cohort_store
from scheduler.dispatcher import Dispatcher, RetryPolicy
from tests.dialogue.conftest import Chat
from tests.scheduler.outbox_rows import FakeChannel, add_lessons, lesson_row

TEACHING = [
    "user-centred-design",
    "privacy-security-ethics",
    "agile-teams",
    "iteration-feedback",
    "procurement-change",
    "open-government",
    "data-decisions",
    "digital-affordances",
]


@pytest.fixture
def learner(shipped: Dialogue) -> Chat:
    """A learner's SMS chat with the shipped course."""
    return Chat(shipped)


async def start(chat: Chat) -> str:
    """Join DS1 in English and skip the profile: the pre-assessment's text."""
    await chat.send("JOIN DS1")
    await chat.send("1")
    await chat.send("SKIP")
    await chat.send("SKIP")
    return await chat.say("SKIP")


def button(lesson_id: str, question_id: str, value: str) -> str:
    """The payload of a question's button: it names its prompt (issue 9 §2)."""
    return f"{prompts.PREFIX}{prompts.for_question(lesson_id, question_id)}:{value}"


async def pre_check(chat: Chat) -> list[str]:
    """Answer the four pre-assessment items, the first one wrongly: each reply."""
    return [
        await chat.say("", payload=button("pre-assessment", "q1", "ans:2")),
        await chat.say("", payload=button("pre-assessment", "q2", "tf:true")),
        await chat.say("", payload=button("pre-assessment", "q3", "ans:1")),
        await chat.say("", payload=button("pre-assessment", "q4", "rate:2")),
    ]


async def push(engine: AsyncEngine, dialogue: Dialogue, chat: Chat, lesson_id: str) -> None:
    """A trainer's push of one lesson, sent by the real dispatcher."""
    row = await chat.learner()
    async with engine.begin() as conn:
        enrollment_id = (
            await conn.execute(select(enrollments.c.id).where(enrollments.c.learner_id == row.id))
        ).scalar_one()
        await add_lessons(conn, [lesson_row(row.id, enrollment_id, lesson_id=lesson_id)])
    dispatcher = Dispatcher(
        engine,
        {ChannelName.SMS: FakeChannel(ChannelName.SMS)},
        dialogue,
        retry=RetryPolicy(max_attempts=3, base=10.0),
        rng=random.Random(7),
    )
    result = await dispatcher.run_until_idle()
    assert result.sent == 1


async def delivered(chat: Chat) -> list[str]:
    row = await chat.learner()
    return [e.lesson_id for e in await chat.events(row.learner_key) if e.type == "lesson_delivered"]


async def test_the_pre_check_takes_one_answer_gives_no_verdict_and_stays_out_of_the_score(
    learner: Chat,
) -> None:
    assert "Before you start" in await start(learner)

    replies = await pre_check(learner)

    # Today: "Try again." after the wrong answer, and PROGRESS counted it in the quiz score.
    assert all("Thank you for your answer." in reply for reply in replies)
    assert not any("Try again" in r or "Correct" in r or "Not quite" in r for r in replies)
    assert "How confident are you" in replies[2]  # the confidence item follows the three
    progress = await learner.say("PROGRESS")
    assert "You have completed 0 of 8 lessons." in progress
    assert "Check-ins and survey done: 1 of 3." in progress
    assert "No quiz answers yet." in progress


async def test_a_pushed_lesson_leaves_the_skipped_lessons_to_come(
    engine: AsyncEngine, shipped: Dialogue, learner: Chat
) -> None:
    await start(learner)
    await pre_check(learner)

    await push(engine, shipped, learner, "data-decisions")

    # Today: "You have completed 7 of 10 lessons" before any answer.
    assert "You have completed 0 of 8 lessons." in await learner.say("PROGRESS")
    await learner.say("1")
    done = await learner.say("1,2,4")
    assert "Lesson complete!" in done
    assert "You have completed 1 of 8 lessons." in await learner.say("PROGRESS")
    # Today: NEXT sent lesson 9, and 2-7 were never offered.
    await learner.say("NEXT")
    assert (await delivered(learner))[-1] == "user-centred-design"


async def test_a_pushed_survey_does_not_finish_the_course(
    engine: AsyncEngine, shipped: Dialogue, learner: Chat
) -> None:
    await start(learner)

    await push(engine, shipped, learner, "feedback-survey")
    await learner.say("", payload=button("feedback-survey", "q1", "rate:4"))
    await learner.say("", payload=button("feedback-survey", "q2", "rate:5"))
    finished = await learner.say("Ask the users first.")

    # Today: "Congratulations, you have finished the course!" and the enrollment completed.
    assert "Congratulations" not in finished
    row = await learner.learner()
    types = [e.type for e in await learner.events(row.learner_key)]
    assert "course_completed" not in types
    async with engine.connect() as conn:
        status = (await conn.execute(select(enrollments.c.status))).scalar_one()
    assert status == "active"
    # NEXT still starts at the beginning: the pre-assessment is the first not completed.
    await learner.say("NEXT")
    assert (await delivered(learner))[-1] == "pre-assessment"


async def test_the_whole_course_then_post_assessment_and_survey(
    engine: AsyncEngine, shipped: Dialogue, learner: Chat
) -> None:
    await start(learner)
    await pre_check(learner)
    course = shipped.courses["digital-skills"]
    for lesson_id in TEACHING:
        await learner.say("NEXT")
        for question in course.lessons[lesson_id].questions:
            last = await learner.say(*right_answer(lesson_id, question))
    assert "Congratulations, you have finished the course!" in last
    progress = await learner.say("PROGRESS")
    assert "You have completed 8 of 8 lessons." in progress
    assert "Quiz score: 100%" in progress

    post = await learner.say("NEXT")
    assert "After the course" in post
    post_replies = [
        await learner.say("", payload=button("post-assessment", "q1", "ans:1")),
        await learner.say("", payload=button("post-assessment", "q2", "tf:false")),
        await learner.say("", payload=button("post-assessment", "q3", "ans:1")),
        await learner.say("", payload=button("post-assessment", "q4", "rate:4")),
    ]
    assert all("Thank you for your answer." in reply for reply in post_replies)
    await learner.say("NEXT")  # the survey
    await learner.say("", payload=button("feedback-survey", "q1", "rate:5"))
    await learner.say("", payload=button("feedback-survey", "q2", "rate:4"))
    last = await learner.say("Ask the users first.")
    assert "Thank you! You have done everything in this course." in last
    assert "You have finished the course." in await learner.say("NEXT")

    row = await learner.learner()
    answered = [e for e in await learner.events(row.learner_key) if e.type == "answered"]
    # Every answer's value reaches the log, except the reflection's text.
    values = {(e.lesson_id, e.question_id): e.detail for e in answered}
    assert values[("pre-assessment", "q1")] == {"kind": "single_choice", "value": "2"}
    assert values[("post-assessment", "q1")] == {"kind": "single_choice", "value": "1"}
    assert values[("pre-assessment", "q2")] == {"kind": "true_false", "value": "true"}
    assert values[("post-assessment", "q4")] == {"kind": "rating", "value": "4"}
    assert values[("feedback-survey", "q3")] == {"kind": "free_text"}
    # The gain per learner is measurable: the same items, graded, before and after.
    pre = {e.question_id: e.correct for e in answered if e.lesson_id == "pre-assessment"}
    post_ = {e.question_id: e.correct for e in answered if e.lesson_id == "post-assessment"}
    assert pre == {"q1": False, "q2": False, "q3": True, "q4": None}
    assert post_ == {"q1": True, "q2": True, "q3": True, "q4": None}
    async with engine.connect() as conn:
        status = (await conn.execute(select(enrollments.c.status))).scalar_one()
        [gain] = await assessment_gains(conn, "digital-skills", "pre-assessment", "post-assessment")
    assert status == "completed"
    assert (gain.learner_key, gain.pre_right, gain.post_right, gain.gain) == (
        row.learner_key,
        1,
        3,
        2,
    )


def right_answer(lesson_id: str, question: Question) -> tuple[str, str | None]:
    """What a learner who knows sends: (text, payload)."""
    if isinstance(question, TrueFalse):
        return "", button(lesson_id, question.id, f"tf:{str(question.answer).lower()}")
    if isinstance(question, SingleChoice):
        return "", button(lesson_id, question.id, f"ans:{question.answer}")
    if isinstance(question, MultipleSelect):
        return ",".join(map(str, question.answers)), None
    if isinstance(question, Rating):
        return "", button(lesson_id, question.id, "rate:4")
    assert isinstance(question, FreeText)
    return "Start with the users.", None


async def progress_done(chat: Chat) -> int:
    text = await chat.say("PROGRESS")
    return int(text.split("You have completed ")[1].split(" ")[0])


async def test_progress_cohort_show_and_the_event_log_agree(
    engine: AsyncEngine, shipped: Dialogue
) -> None:
    # Three learners, each a different route: pushes out of order, NEXT, a pushed survey.
    chats = [Chat(shipped, address=f"+1555020{n}") for n in range(3)]
    for chat in chats:
        await start(chat)
    await pre_check(chats[0])
    await push(engine, shipped, chats[0], "data-decisions")
    await chats[0].say("1")
    await chats[0].say("1,2,4")
    await chats[0].say("NEXT")
    # Question 1 of user-centred-design answered, its free-text question 2 left open.
    await chats[0].say("", payload=button("user-centred-design", "q1", "ans:1"))
    await push(engine, shipped, chats[1], "feedback-survey")
    for reply in ("4", "4", "More tests."):
        await chats[1].say(reply)
    await pre_check(chats[2])

    async with engine.connect() as conn:
        info = await cohort_store.find_cohort(conn, "DS1")
        assert info is not None
        report = await cohort_store.cohort_report(
            conn, info, with_learners=True, courses=shipped.courses
        )
        stored = (await conn.execute(select(lesson_completions))).all()
        logged = await conn.execute(select(events).where(events.c.type == "lesson_completed"))
        log: list[Any] = list(logged)
    keys = [(await chat.learner()).learner_key for chat in chats]
    from_log = [len({e.lesson_id for e in log if e.learner_key == k} & set(TEACHING)) for k in keys]
    by_progress = [await progress_done(chat) for chat in chats]
    by_show = sorted(p.lessons_completed for p in report.learners)
    assert by_progress == from_log == [1, 0, 0]
    assert sorted(by_progress) == by_show
    assert report.lessons_completed == sum(from_log)
    assert len(stored) == len(log)  # one completion row per lesson_completed event
