"""What a lesson costs by SMS: the one count that `lessons check` and `lessons preview` share."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bot.domain import ChannelName, RenderedMessage
from bot.i18n import UiTranslator
from bot.lessons.models import Course, Lesson
from bot.lessons.render import lesson_sequence, render
from bot.lessons.sms import DEFAULT_SMS_FOLD

DEFAULT_BUDGET_KEY = "default"


@dataclass(frozen=True, slots=True)
class SmsCost:
    """What one lesson (the lesson and every question) costs by SMS in one locale."""

    encoding: str  # "UCS-2" if any part needs it, else "GSM-7"
    segments: int
    messages: int

    @classmethod
    def of(cls, parts: list[RenderedMessage]) -> SmsCost:
        """The cost of the parts as sent."""
        encoding = "UCS-2" if any(part.encoding == "UCS-2" for part in parts) else "GSM-7"
        return cls(encoding, sum(part.segments for part in parts), len(parts))


def sms_parts(
    lesson: Lesson,
    locale: str,
    ui: UiTranslator,
    *,
    max_segments: int = 3,
    fold: Collection[str] = DEFAULT_SMS_FOLD,
    address: str = "check",
) -> list[tuple[str, list[RenderedMessage]]]:
    """Each message of a localized lesson, named, with the SMS parts the channel sends for it."""
    return [
        (title, render(message, sms_max_segments=max_segments, sms_fold=fold))
        for title, message in lesson_sequence(
            lesson, channel=ChannelName.SMS, address=address, locale=locale, ui=ui
        )
    ]


def sms_cost(
    lesson: Lesson,
    locale: str,
    ui: UiTranslator,
    *,
    max_segments: int = 3,
    fold: Collection[str] = DEFAULT_SMS_FOLD,
) -> SmsCost:
    """Encoding, segments and messages of a localized lesson as the SMS channel sends it."""
    parts = sms_parts(lesson, locale, ui, max_segments=max_segments, fold=fold)
    return SmsCost.of([part for _, rendered in parts for part in rendered])


def segment_budget(course: Course, lesson: Lesson, locale: str) -> int | None:
    """The SMS segments `lesson` may cost in `locale`: its own budget, else the course's."""
    budget = lesson.sms_segment_budget
    if budget is None:
        budget = course.sms_segment_budget
    if budget is None or isinstance(budget, int):
        return budget
    language = locale.split("_", 1)[0]
    for key in (locale, language, DEFAULT_BUDGET_KEY):
        if key in budget:
            return budget[key]
    return None
