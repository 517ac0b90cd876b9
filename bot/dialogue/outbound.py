"""Scheduled lessons for the dispatcher: the messages, and the writes that go with sending them.

The dispatcher renders and sends; what a sent lesson changes (the enrollment's open question,
the `lesson_delivered` event, the locale actually delivered) is computed here and written by
the dispatcher in the same statement batch as the delivery's result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.dialogue.prompts import tag_question
from bot.domain import ChannelName, EventType, OutboundMessage, RenderedMessage
from bot.lessons import render
from bot.store.events import EventRow

if TYPE_CHECKING:
    from bot.dialogue.flow import Dialogue

_ADDRESS = ""  # cached messages carry no address; each learner's is filled in


@dataclass(frozen=True, slots=True)
class LessonTarget:
    """A claimed lesson delivery and what the dispatcher read about its learner."""

    delivery_id: int
    enrollment_id: int
    cohort_id: int | None
    course_id: str  # the enrollment's current course
    lesson_id: str
    learner_key: str
    learner_locale: str | None
    channel: ChannelName
    address: str


@dataclass(frozen=True, slots=True)
class PreparedLesson:
    """A lesson ready to render, and what to write once it is sent."""

    messages: list[OutboundMessage]
    locale: str  # the locale actually delivered
    course_id: str
    title: str
    enrollment_values: dict[str, Any]  # empty: the enrollment does not move
    event: EventRow | None


def find_course(dialogue: Dialogue, course_id: str, lesson_id: str) -> str | None:
    """The course holding `lesson_id`: the enrollment's own, else the first that has it."""
    loaded = dialogue.courses.get(course_id)
    if loaded is not None and lesson_id in loaded.lessons:
        return course_id
    return next((cid for cid, c in dialogue.courses.items() if lesson_id in c.lessons), None)


def prepare_lesson(
    dialogue: Dialogue, target: LessonTarget, now: datetime
) -> PreparedLesson | None:
    """The lesson in the best locale of the learner's chain; None if no course has it."""
    course_id = find_course(dialogue, target.course_id, target.lesson_id)
    if course_id is None:
        return None
    key = (course_id, target.lesson_id, target.learner_locale, target.channel)
    cached = dialogue.lesson_cache.get(key)
    if cached is None:
        lesson, locale = dialogue.localized(course_id, target.lesson_id, target.learner_locale)
        messages = render.lesson_messages(
            lesson,
            channel=target.channel,
            address=_ADDRESS,
            locale=locale,
            ui=dialogue.translations(locale),
            is_reply=False,
        )
        # The question opened here is the enrollment's open prompt: its buttons name it.
        messages = [tag_question(m) for m in messages]
        cached = dialogue.lesson_cache[key] = (messages, locale, lesson.title)
    messages, locale, title = cached
    return PreparedLesson(
        messages=[replace(m, address=target.address) for m in messages],
        locale=locale,
        course_id=course_id,
        title=title,
        enrollment_values={
            "course_id": course_id,
            "lesson_id": target.lesson_id,
            "question_index": 0,
            "attempt": 0,
            "reminders_sent": 0,
            "awaiting_since": now,
        },
        event=EventRow(
            type=EventType.LESSON_DELIVERED,
            learner_key=target.learner_key,
            cohort_id=target.cohort_id,
            course_id=course_id,
            lesson_id=target.lesson_id,
            locale=locale,
            channel=str(target.channel),
            occurred_at=now,
        ),
    )


def whatsapp_template(
    dialogue: Dialogue, target: LessonTarget, prepared: PreparedLesson
) -> RenderedMessage | None:
    """The approved "your lesson is ready, reply 1" template for the learner; None if none."""
    loaded = dialogue.courses[prepared.course_id]
    chain = dialogue.chain(target.learner_locale, loaded.course.source_locale)
    for locale in chain:
        sid = dialogue.whatsapp_templates.get(locale) or loaded.course.whatsapp_templates.get(
            locale
        )
        if sid:
            return RenderedMessage(
                channel=ChannelName.WHATSAPP,
                address=target.address,
                text=prepared.title,
                is_reply=False,
                content_sid=sid,
                content_variables=(("1", prepared.title),),
            )
    return None


def prepare_reminder(
    dialogue: Dialogue, target: LessonTarget, question_index: int | None
) -> PreparedLesson | None:
    """A reminder of the learner's open question (`target.lesson_id` is the open lesson).

    None when there is nothing to remind of: the question was answered since the planner
    queued the reminder. The enrollment does not move; the planner already counted it.
    """
    course_id = find_course(dialogue, target.course_id, target.lesson_id)
    if course_id is None or question_index is None:
        return None
    lesson, locale = dialogue.localized(course_id, target.lesson_id, target.learner_locale)
    if not 0 <= question_index < len(lesson.questions):
        return None
    tr = dialogue.translations(locale)
    question = tag_question(
        render.question_message(
            lesson,
            question_index,
            channel=target.channel,
            address=target.address,
            locale=locale,
            ui=tr,
            is_reply=False,
        )
    )
    reminder = tr.gettext("A reminder: this question is waiting for your answer.")
    return PreparedLesson(
        messages=[replace(question, text=f"{reminder}\n\n{question.text}")],
        locale=locale,
        course_id=course_id,
        title=lesson.title,
        enrollment_values={},
        event=None,
    )
