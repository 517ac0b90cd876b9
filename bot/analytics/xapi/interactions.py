"""Quiz and survey questions as xAPI `cmi.interaction` activities, and answers as responses."""

from __future__ import annotations

from typing import Any

from bot.analytics.xapi.vocabulary import INTERACTION
from bot.lessons.models import FreeText, MultipleSelect, Question, Rating, SingleChoice, TrueFalse

RATING_SCALE = range(1, 6)  # Rating questions are 1 to 5


def interaction_definition(question: Question, language: str) -> dict[str, Any]:
    """The activity definition of a question: its interaction type and correct responses.

    Texts are in the course's source language (`language`): the LRS names an activity once,
    while each statement's context says which translation the learner actually read.
    """
    definition: dict[str, Any] = {
        "type": INTERACTION,
        "description": {language: question.prompt},
    }
    if isinstance(question, SingleChoice | MultipleSelect):
        definition["interactionType"] = "choice"
        definition["choices"] = [
            {"id": str(number), "description": {language: option.text}}
            for number, option in enumerate(question.options, start=1)
        ]
        right = [question.answer] if isinstance(question, SingleChoice) else question.answers
        definition["correctResponsesPattern"] = ["[,]".join(str(n) for n in sorted(right))]
    elif isinstance(question, TrueFalse):
        definition["interactionType"] = "true-false"
        definition["correctResponsesPattern"] = ["true" if question.answer else "false"]
    elif isinstance(question, Rating):
        definition["interactionType"] = "likert"
        definition["scale"] = [_scale_point(n, question, language) for n in RATING_SCALE]
    else:
        assert isinstance(question, FreeText)
        definition["interactionType"] = "long-fill-in"
    return definition


def _scale_point(n: int, question: Rating, language: str) -> dict[str, Any]:
    point: dict[str, Any] = {"id": str(n)}
    label = {1: question.low_label, RATING_SCALE[-1]: question.high_label}.get(n)
    point["description"] = {language: f"{n} ({label})" if label else str(n)}
    return point


def xapi_response(kind: str, value: str) -> str:
    """An answer as stored ("1,3", "true", "4") in xAPI's response format ("1[,]3")."""
    if kind == "multiple_select":
        return "[,]".join(part for part in value.split(",") if part)
    return value
