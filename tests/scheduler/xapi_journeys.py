"""Learners going through the shipped course on every channel, for the xAPI tests and bench."""

from __future__ import annotations

from datetime import datetime

from bot.dialogue import Dialogue
from bot.domain import ChannelName, EventType
from bot.store.events import EventRow
from tests.dialogue.conftest import Chat
from tests.dialogue.test_learning_record import TEACHING, button, pre_check, right_answer, start

ADDRESSES = {
    ChannelName.SMS: "+15550100001",
    ChannelName.WHATSAPP: "+15550100002",
    ChannelName.TELEGRAM: "700000001",
}


async def whole_course(dialogue: Dialogue, channel: ChannelName, address: str) -> Chat:
    """Join, pre-check, every lesson, post-check, survey, a language change, STOP and START."""
    chat = Chat(dialogue, address, channel)
    await start(chat)
    await pre_check(chat)
    course = dialogue.courses["digital-skills"]
    for lesson_id in TEACHING:
        await chat.say("NEXT")
        questions = course.lessons[lesson_id].questions
        # One wrong first attempt, so a retry and a failure are in the log too.
        await chat.say("", payload=button(lesson_id, questions[0].id, "tf:maybe"))
        for question in questions:
            await chat.say(*right_answer(lesson_id, question))
    await chat.say("NEXT")
    for question in course.lessons["post-assessment"].questions:
        await chat.say(*right_answer("post-assessment", question))
    await chat.say("NEXT")
    for question in course.lessons["feedback-survey"].questions:
        await chat.say(*right_answer("feedback-survey", question))
    await chat.say("LANGUAGE")
    await chat.say("2")
    await chat.say("STOP")
    await chat.say("START")
    return chat


async def leaves_and_deletes(dialogue: Dialogue, channel: ChannelName, address: str) -> Chat:
    """Join, answer the pre-check, then DELETE MY DATA."""
    chat = Chat(dialogue, address, channel)
    await start(chat)
    await pre_check(chat)
    await chat.say("DELETE MY DATA")
    await chat.say("YES")
    return chat


KINDS = (
    EventType.LESSON_DELIVERED,
    EventType.ANSWERED,
    EventType.ANSWERED,
    EventType.LESSON_COMPLETED,
    EventType.ENROLLED,
    EventType.STOPPED,
)


def synthetic_events(count: int, first: int, at: datetime) -> list[EventRow]:
    """`count` events of the kinds a journey writes, numbered from `first` (deterministic)."""
    rows = []
    for n in range(first, first + count):
        kind = KINDS[n % len(KINDS)]
        answered = kind is EventType.ANSWERED
        rows.append(
            EventRow(
                type=kind,
                learner_key=f"learner-{n % 5000}",
                cohort_id=1 + n % 20,
                course_id="digital-skills",
                lesson_id=None if kind is EventType.ENROLLED else "agile-teams",
                question_id="q1" if answered else None,
                locale="sw" if kind is EventType.LESSON_DELIVERED else None,
                channel=("sms", "whatsapp", "telegram")[n % 3],
                correct=(n % 5 < 3) if answered else None,
                attempt=1 if answered else None,
                detail={"kind": "single_choice", "value": "2"} if answered else None,
                occurred_at=at,
            )
        )
    return rows
