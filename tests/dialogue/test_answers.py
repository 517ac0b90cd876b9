"""Reading replies to questions, and grading them."""

from __future__ import annotations

import pytest

from bot.dialogue.answers import grade, parse_reply
from bot.lessons.models import FreeText, MultipleSelect, Option, Rating, SingleChoice, TrueFalse

CHOICE = SingleChoice(
    id="q1",
    kind="single_choice",
    prompt="Pick",
    options=[
        Option(text="Rules first", feedback="Not yet."),
        Option(text="Users first", feedback="Yes."),
        Option(text="Software first"),
    ],
    answer=2,
)
STATEMENT = TrueFalse(id="q2", kind="true_false", prompt="Collect everything?", answer=False)
SEVERAL = MultipleSelect(
    id="q3",
    kind="multiple_select",
    prompt="Which?",
    options=[Option(text="A"), Option(text="B"), Option(text="C")],
    answers=[1, 3],
)
RATING = Rating(id="q4", kind="rating", prompt="Useful?")
REFLECTION = FreeText(id="q5", kind="free_text", prompt="Why?")


@pytest.mark.parametrize(
    "typed", ["2", "B", "b", "b)", "b.", "(b)", "B)", " 2 ", "٢", "users first", "ب", "ans"]
)
def test_single_choice_forms(typed: str) -> None:
    reply = parse_reply(CHOICE, typed)
    if typed == "ans":
        assert reply is None
    else:
        assert reply is not None and reply.options == (2,), typed


def test_single_choice_payload_and_refusals() -> None:
    reply = parse_reply(CHOICE, "", "ans:3")
    assert reply is not None and reply.response == "3"
    for typed in ("4", "0", "1,2", "d", "maybe", ""):
        assert parse_reply(CHOICE, typed) is None, typed


@pytest.mark.parametrize(
    "typed",
    ["true", "TRUE", "vrai", "verdadero", "verdadeiro", "kweli", "صحيح", "نعم", "yes", "oui",
     "sí", "si", "sim", "ndiyo", "1", "١"],
)  # fmt: skip
def test_true_forms(typed: str) -> None:
    reply = parse_reply(STATEMENT, typed)
    assert reply is not None and reply.value is True and reply.response == "true", typed


@pytest.mark.parametrize(
    "typed",
    ["false", "faux", "falso", "uongo", "si kweli", "Si Kweli", "خطأ", "لا", "no", "non", "não",
     "nao", "hapana", "2"],
)  # fmt: skip
def test_false_forms(typed: str) -> None:
    reply = parse_reply(STATEMENT, typed)
    assert reply is not None and reply.value is False, typed


def test_true_false_payload_and_grading() -> None:
    reply = parse_reply(STATEMENT, "", "tf:false")
    assert reply is not None and grade(STATEMENT, reply).correct is True
    wrong = parse_reply(STATEMENT, "", "tf:true")
    assert wrong is not None and grade(STATEMENT, wrong).correct is False
    assert parse_reply(STATEMENT, "perhaps") is None


@pytest.mark.parametrize("typed", ["1,3", "1 3", "A C", "a, c", "3 1", "1 and 3", "١ ٣"])
def test_multiple_select_forms(typed: str) -> None:
    reply = parse_reply(SEVERAL, typed)
    assert reply is not None and reply.options == (1, 3) and reply.response == "1,3"
    assert grade(SEVERAL, reply).correct is True


def test_multiple_select_partial_is_wrong() -> None:
    reply = parse_reply(SEVERAL, "1")
    assert reply is not None and grade(SEVERAL, reply).correct is False
    assert parse_reply(SEVERAL, "1,4") is None


def test_single_choice_grading_uses_the_option_feedback() -> None:
    wrong = parse_reply(CHOICE, "a")
    right = parse_reply(CHOICE, "2")
    assert wrong is not None and right is not None
    assert (grade(CHOICE, wrong).correct, grade(CHOICE, wrong).feedback) == (False, "Not yet.")
    assert (grade(CHOICE, right).correct, grade(CHOICE, right).feedback) == (True, "Yes.")


def test_rating_is_ungraded_one_to_five() -> None:
    for typed, payload in (("4", None), ("", "rate:4"), ("٤", None)):
        reply = parse_reply(RATING, typed, payload)
        assert reply is not None and reply.rating == 4
        assert grade(RATING, reply).correct is None
    for typed in ("0", "6", "great"):
        assert parse_reply(RATING, typed) is None


def test_free_text_takes_anything_but_nothing() -> None:
    reply = parse_reply(REFLECTION, "  I will ask users first.  ")
    assert reply is not None and reply.response == "I will ask users first."
    assert grade(REFLECTION, reply).correct is None
    assert parse_reply(REFLECTION, "   ") is None
