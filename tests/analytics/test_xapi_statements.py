"""Events as xAPI statements: verbs, interactions, actors, registrations, ids (docs/XAPI.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.analytics.pseudonym import pseudonym
from bot.analytics.xapi import vocabulary as v
from bot.analytics.xapi.statements import EventRecord, Score, StatementMapper, UnmappableEvent
from bot.lessons.loader import load_courses
from tests.dialogue.conftest import ROOT

HOME = "https://learnbot.example.org"
SECRET = "statements-test-secret-0123456789"
WHEN = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def mapper() -> StatementMapper:
    return StatementMapper(HOME + "/", SECRET, load_courses(ROOT / "lessons"))


def event(type: str, **values: Any) -> EventRecord:
    fields: dict[str, Any] = {
        "id": 42,
        "occurred_at": WHEN,
        "type": type,
        "learner_key": "key-1",
        "cohort_id": 7,
        "course_id": "digital-skills",
        "lesson_id": None,
        "question_id": None,
        "locale": None,
        "channel": "sms",
        "correct": None,
        "attempt": None,
        "detail": None,
    }
    return EventRecord(**{**fields, **values})


def test_the_actor_is_an_account_named_by_the_learners_pseudonym(mapper: StatementMapper) -> None:
    statement = mapper.statement(event("enrolled", detail={"source": "import"}))

    assert statement["actor"] == {
        "objectType": "Agent",
        "account": {"homePage": HOME, "name": pseudonym(SECRET, "key-1")},
    }
    assert statement["verb"]["id"] == "http://adlnet.gov/expapi/verbs/registered"
    assert statement["object"]["id"] == f"{HOME}/xapi/courses/digital-skills"
    assert statement["result"]["extensions"] == {v.EXT_SOURCE: "import"}


def test_ids_come_from_the_event_and_the_installation(mapper: StatementMapper) -> None:
    other = StatementMapper("https://other.example.org", SECRET, mapper.courses)
    first = mapper.statement(event("enrolled"))

    assert first["id"] == mapper.statement(event("enrolled"))["id"]  # a retry: the same id
    assert first["id"] != mapper.statement(event("enrolled", id=43))["id"]
    assert first["id"] != other.statement(event("enrolled"))["id"]
    assert first["id"][14] == "5"  # UUID version 5


def test_the_context_carries_the_enrollment_course_cohort_language_and_channel(
    mapper: StatementMapper,
) -> None:
    delivered = event("lesson_delivered", lesson_id="agile-teams", locale="pt_BR")
    other_cohort = event("lesson_delivered", lesson_id="agile-teams", cohort_id=8)

    context = mapper.statement(delivered)["context"]

    assert context["registration"] == v.registration(mapper.namespace, "key-1", 7)
    assert context["registration"] != mapper.statement(other_cohort)["context"]["registration"]
    assert [a["id"] for a in context["contextActivities"]["grouping"]] == [
        f"{HOME}/xapi/courses/digital-skills",
        f"{HOME}/xapi/cohorts/7",
    ]
    assert context["language"] == "pt-BR"
    assert context["extensions"] == {v.EXT_CHANNEL: "sms"}


def test_a_lesson_received_is_launched_and_names_its_type(mapper: StatementMapper) -> None:
    statement = mapper.statement(event("lesson_delivered", lesson_id="pre-assessment"))

    assert statement["verb"]["id"] == "http://adlnet.gov/expapi/verbs/launched"
    assert statement["object"]["definition"]["type"] == v.ASSESSMENT


def test_a_multiple_select_answer_is_a_choice_interaction_with_its_correct_responses(
    mapper: StatementMapper,
) -> None:
    answered = event(
        "answered",
        lesson_id="data-decisions",
        question_id="q2",
        correct=False,
        attempt=2,
        locale="sw",
        detail={"kind": "multiple_select", "value": "1,2"},
    )

    statement = mapper.statement(answered)

    definition = statement["object"]["definition"]
    assert definition["type"] == v.INTERACTION
    assert definition["interactionType"] == "choice"
    assert definition["correctResponsesPattern"] == ["1[,]2[,]4"]
    assert [c["id"] for c in definition["choices"]] == ["1", "2", "3", "4"]
    assert statement["result"] == {
        "response": "1[,]2",
        "success": False,
        "extensions": {v.EXT_ATTEMPT: 2},
    }
    assert statement["context"]["contextActivities"]["parent"][0]["id"].endswith(
        "/lessons/data-decisions"
    )


def test_true_false_rating_and_reflection_questions(mapper: StatementMapper) -> None:
    true_false = mapper.statement(
        event(
            "answered",
            lesson_id="pre-assessment",
            question_id="q2",
            correct=True,
            detail={"kind": "true_false", "value": "false"},
        )
    )
    rating = mapper.statement(
        event(
            "answered",
            lesson_id="feedback-survey",
            question_id="q1",
            detail={"kind": "rating", "value": "4"},
        )
    )

    assert true_false["object"]["definition"]["interactionType"] == "true-false"
    assert true_false["object"]["definition"]["correctResponsesPattern"] == ["false"]
    assert true_false["result"]["response"] == "false"
    scale = rating["object"]["definition"]["scale"]
    assert rating["object"]["definition"]["interactionType"] == "likert"
    assert [s["id"] for s in scale] == ["1", "2", "3", "4", "5"]
    assert scale[0]["description"] == {"en": "1 (Not useful)"}
    assert "success" not in rating["result"]  # a survey is not graded
    assert rating["result"]["response"] == "4"


def test_a_reflection_sends_no_response(mapper: StatementMapper) -> None:
    # Free text may say anything about the learner: it stays in our answers table.
    lesson = mapper.courses["digital-skills"].lessons["feedback-survey"]
    free = next(q for q in lesson.questions if q.kind == "free_text")
    statement = mapper.statement(
        event(
            "answered",
            lesson_id="feedback-survey",
            question_id=free.id,
            detail={"kind": "free_text"},
        )
    )

    assert statement["object"]["definition"]["interactionType"] == "long-fill-in"
    assert "response" not in statement.get("result", {})


def test_an_assessment_completion_carries_its_score(mapper: StatementMapper) -> None:
    statement = mapper.statement(
        event("lesson_completed", lesson_id="post-assessment"), Score(right=2, graded=3)
    )

    assert statement["verb"]["id"] == "http://adlnet.gov/expapi/verbs/completed"
    assert statement["result"] == {
        "completion": True,
        "score": {"raw": 2, "min": 0, "max": 3, "scaled": 0.6667},
    }


@pytest.mark.parametrize(
    ("type", "detail", "verb", "reason"),
    [
        ("stopped", None, "http://adlnet.gov/expapi/verbs/suspended", "stop"),
        (
            "stopped",
            {"by": "provider", "code": "21610"},
            "http://adlnet.gov/expapi/verbs/suspended",
            "provider-opt-out",
        ),
        (
            "paused",
            {"reason": "no-answer"},
            "http://adlnet.gov/expapi/verbs/suspended",
            "no-answer",
        ),
        ("restarted", None, "http://adlnet.gov/expapi/verbs/resumed", None),
    ],
)
def test_stop_pause_and_restart(
    mapper: StatementMapper, type: str, detail: Any, verb: str, reason: str | None
) -> None:
    statement = mapper.statement(event(type, detail=detail))

    assert statement["verb"]["id"] == verb
    assert statement.get("result", {}).get("extensions", {}).get(v.EXT_REASON) == reason


def test_a_profile_change_names_the_field_never_the_answer(mapper: StatementMapper) -> None:
    statement = mapper.statement(event("profile_updated", course_id=None, detail={"field": "role"}))

    assert statement["object"]["id"] == f"{HOME}/xapi"
    assert statement["result"] == {"extensions": {v.EXT_FIELD: "role"}}


def test_an_erasure_is_a_statement_of_its_own(mapper: StatementMapper) -> None:
    statement = mapper.statement(event("data_deleted", detail={"tombstone": "key-1"}))

    assert statement["verb"]["id"] == v.ERASED["id"]
    assert "key-1" not in repr(statement)


def test_an_unknown_event_type_is_refused_whole(mapper: StatementMapper) -> None:
    with pytest.raises(UnmappableEvent, match="'teleported'"):
        mapper.statement(event("teleported"))
