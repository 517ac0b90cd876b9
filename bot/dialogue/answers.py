"""Reading a learner's reply to a question, and grading it: pure functions, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.dialogue.keywords import FALSE_FORMS, TRUE_FORMS, normalize
from bot.lessons.models import (
    FreeText,
    MultipleSelect,
    Question,
    Rating,
    SingleChoice,
    TrueFalse,
)

# Option labels learners may type instead of numbers: a-e, and the Arabic abjad letters
# (normalised: hamza marks are dropped, so "أ" is "ا").
_LETTERS = {letter: n for n, letter in enumerate("abcde", start=1)}
_LETTERS.update({normalize(letter): n for n, letter in enumerate("أبجده", start=1)})
_SEPARATORS = re.compile(r"[\s,;/&+]+|\b(?:and|et|y|na|و)\b")
MAX_FREE_TEXT = 2000  # a reflection longer than this is cut, not refused


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply understood for a question: what is recorded, and the choice it names."""

    response: str  # stored normalised: "2", "1,3", "true", a rating, or the free text
    options: tuple[int, ...] = ()  # 1-based option numbers chosen
    value: bool | None = None  # a true/false answer
    rating: int | None = None


@dataclass(frozen=True, slots=True)
class Grade:
    """The verdict on a reply: correct (None when ungraded) and the feedback to show."""

    correct: bool | None
    feedback: str | None


def _numbers(text: str, count: int) -> tuple[int, ...] | None:
    """Option numbers from "1", "A", "a)", "(c)", "1,3", "1 3", "A C"; None if not that."""
    tokens = [t for t in _SEPARATORS.split(normalize(text)) if t]
    if not tokens:
        return None
    chosen: list[int] = []
    for token in tokens:
        if token.isdigit():
            number = int(token)
        elif token in _LETTERS:
            number = _LETTERS[token]
        else:
            return None
        if not 1 <= number <= count:
            return None
        if number not in chosen:
            chosen.append(number)
    return tuple(chosen)


def _payload_numbers(payload: str, prefix: str) -> tuple[int, ...] | None:
    if not payload.startswith(prefix):
        return None
    parts = payload[len(prefix) :].split(",")
    if not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def _by_text(text: str, options: list[str]) -> int | None:
    wanted = normalize(text)
    for number, option in enumerate(options, start=1):
        if wanted and normalize(option) == wanted:
            return number
    return None


def parse_reply(question: Question, text: str, payload: str | None = None) -> Reply | None:
    """The reply a message gives to `question` (a localized question), or None if unclear."""
    if isinstance(question, SingleChoice | MultipleSelect):
        count = len(question.options)
        chosen = _payload_numbers(payload, "ans:") if payload else None
        if chosen is None:
            chosen = _numbers(text, count)
        if chosen is None:
            by_text = _by_text(text, [option.text for option in question.options])
            chosen = (by_text,) if by_text is not None else None
        if not chosen or any(not 1 <= n <= count for n in chosen):
            return None
        if isinstance(question, SingleChoice) and len(chosen) != 1:
            return None
        ordered = tuple(sorted(chosen))
        return Reply(response=",".join(str(n) for n in ordered), options=ordered)
    if isinstance(question, TrueFalse):
        value: bool | None = None
        if payload in ("tf:true", "tf:false"):
            value = payload == "tf:true"
        else:
            word = normalize(text)
            if word in TRUE_FORMS or word in ("1", "a"):
                value = True
            elif word in FALSE_FORMS or word in ("2", "b"):
                value = False
        return None if value is None else Reply(response=str(value).lower(), value=value)
    if isinstance(question, Rating):
        rated = _payload_numbers(payload, "rate:") if payload else None
        if rated is None:
            rated = _numbers(text, 5)
        if rated is None or len(rated) != 1 or not 1 <= rated[0] <= 5:
            return None
        return Reply(response=str(rated[0]), rating=rated[0])
    assert isinstance(question, FreeText)
    cleaned = text.strip()
    return Reply(response=cleaned[:MAX_FREE_TEXT]) if cleaned else None


def grade(question: Question, reply: Reply) -> Grade:
    """Whether the reply is right, with the feedback written for it (None: use a default)."""
    if isinstance(question, SingleChoice):
        chosen = reply.options[0]
        return Grade(chosen == question.answer, question.options[chosen - 1].feedback)
    if isinstance(question, TrueFalse):
        right = reply.value == question.answer
        return Grade(right, question.feedback.correct if right else question.feedback.incorrect)
    if isinstance(question, MultipleSelect):
        right = set(reply.options) == set(question.answers)
        return Grade(right, question.feedback.correct if right else question.feedback.incorrect)
    return Grade(None, None)


def correct_answer(question: Question) -> tuple[int, ...] | bool | None:
    """The right option numbers, or the right true/false value; None when ungraded."""
    if isinstance(question, SingleChoice):
        return (question.answer,)
    if isinstance(question, MultipleSelect):
        return tuple(sorted(question.answers))
    if isinstance(question, TrueFalse):
        return question.answer
    return None
