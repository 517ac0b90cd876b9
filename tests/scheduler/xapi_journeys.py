"""Learners going through the shipped course on every channel, for the xAPI tests and bench."""

from __future__ import annotations

from bot.dialogue import Dialogue
from bot.domain import ChannelName
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
