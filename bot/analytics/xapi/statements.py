"""One event of the log as one xAPI 1.0.3 statement (docs/XAPI.md gives the whole mapping)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.analytics.pseudonym import pseudonym
from bot.analytics.xapi import vocabulary as v
from bot.analytics.xapi.interactions import interaction_definition, xapi_response
from bot.domain import EventType
from bot.lessons.loader import LoadedCourse
from bot.lessons.models import Lesson


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as read from the log, with its id."""

    id: int
    occurred_at: datetime
    type: str
    learner_key: str
    cohort_id: int | None
    course_id: str | None
    lesson_id: str | None
    question_id: str | None
    locale: str | None
    channel: str | None
    correct: bool | None
    attempt: int | None
    detail: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Score:
    """Items right in an assessment, out of its graded items (first attempts)."""

    right: int
    graded: int


class UnmappableEvent(ValueError):
    """An event of a type this version does not know: parked, never sent half-made."""


_VERBS = {
    EventType.ENROLLED: v.REGISTERED,
    EventType.LESSON_DELIVERED: v.LAUNCHED,
    EventType.ANSWERED: v.ANSWERED,
    EventType.LESSON_COMPLETED: v.COMPLETED,
    EventType.COURSE_COMPLETED: v.COMPLETED,
    EventType.STOPPED: v.SUSPENDED,
    EventType.PAUSED: v.SUSPENDED,
    EventType.RESTARTED: v.RESUMED,
    EventType.LANGUAGE_CHANGED: v.PREFERRED,
    EventType.PROFILE_UPDATED: v.PREFERRED,
    EventType.DATA_DELETED: v.ERASED,
}
# Pseudonyms (an HMAC each) and registrations (a SHA-1 each) are kept for this many learners.
CACHED_LEARNERS = 100_000
_LESSON_TYPES = {"lesson": v.LESSON, "assessment": v.ASSESSMENT, "survey": v.SURVEY}


def language_tag(locale: str) -> str:
    """A gettext locale ("pt_BR") as the RFC 5646 tag xAPI takes ("pt-BR")."""
    return locale.replace("_", "-")


class StatementMapper:
    """Maps events to statements for one installation (its public URL and pseudonym key)."""

    def __init__(
        self, public_url: str, secret_key: str, courses: Mapping[str, LoadedCourse]
    ) -> None:
        self.home = public_url.rstrip("/")
        self.secret_key = secret_key
        self.courses = courses
        self.namespace = v.installation_namespace(self.home)
        self._actors: dict[str, dict[str, Any]] = {}
        # Activities are the same in every statement that names them: built once. Statements
        # share these dicts, so a caller must not change a statement's nested parts.
        self._activities: dict[tuple[str, ...], dict[str, Any]] = {}
        self._registrations: dict[tuple[str, int], str] = {}

    def statement_id(self, event_id: int) -> str:
        """The id of an event's statement (UUID v5 of the event id)."""
        return v.statement_id(self.namespace, event_id)

    def statement(self, event: EventRecord, score: Score | None = None) -> dict[str, Any]:
        """The statement of `event`; `score` for the completion of an assessment."""
        try:
            kind = EventType(event.type)
        except ValueError:
            raise UnmappableEvent(f"event type {event.type!r} has no xAPI mapping") from None
        statement: dict[str, Any] = {
            "id": self.statement_id(event.id),
            "actor": self.actor(event.learner_key),
            "verb": _VERBS[kind],
            "object": self._object(kind, event),
            "timestamp": event.occurred_at.isoformat(),
            "context": self._context(kind, event),
        }
        result = _result(kind, event, score)
        if result:
            statement["result"] = result
        return statement

    def actor(self, learner_key: str) -> dict[str, Any]:
        """The learner as an account: their keyed pseudonym, never an address."""
        actor = self._actors.get(learner_key)
        if actor is None:
            name = pseudonym(self.secret_key, learner_key)
            actor = {"objectType": "Agent", "account": {"homePage": self.home, "name": name}}
            if len(self._actors) < CACHED_LEARNERS:
                self._actors[learner_key] = actor
        return actor

    def _registration(self, learner_key: str, cohort_id: int) -> str:
        key = (learner_key, cohort_id)
        found = self._registrations.get(key)
        if found is None:
            found = v.registration(self.namespace, learner_key, cohort_id)
            if len(self._registrations) < CACHED_LEARNERS:
                self._registrations[key] = found
        return found

    # Activities -------------------------------------------------------------------------

    def platform(self) -> dict[str, Any]:
        """learnbot itself: the object of events that belong to no course."""
        return {
            "objectType": "Activity",
            "id": f"{self.home}/xapi",
            "definition": {"type": v.APPLICATION, "name": {"en": "learnbot"}},
        }

    def course(self, course_id: str) -> dict[str, Any]:
        """A course as an activity, named in its source language when it is loaded."""
        return self._cached(("course", course_id), self._course)

    def _cached(self, key: tuple[str, ...], build: Any) -> dict[str, Any]:
        activity = self._activities.get(key)
        if activity is None:
            activity = self._activities[key] = build(*key[1:])
        return activity

    def _course(self, course_id: str) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "objectType": "Activity",
            "id": f"{self.home}/xapi/courses/{course_id}",
        }
        loaded = self.courses.get(course_id)
        definition: dict[str, Any] = {"type": v.COURSE}
        if loaded is not None:
            definition["name"] = {loaded.course.source_locale: loaded.course.title}
        activity["definition"] = definition
        return activity

    def cohort(self, cohort_id: int) -> dict[str, Any]:
        """A cohort as a grouping activity (no name: trainers' cohort names stay with us)."""
        return self._cached(("cohort", str(cohort_id)), self._cohort)

    def _cohort(self, cohort_id: str) -> dict[str, Any]:
        return {
            "objectType": "Activity",
            "id": f"{self.home}/xapi/cohorts/{cohort_id}",
            "definition": {"type": v.GROUP},
        }

    def lesson(self, course_id: str, lesson_id: str) -> dict[str, Any]:
        """A lesson, assessment or survey as an activity."""
        return self._cached(("lesson", course_id, lesson_id), self._lesson_activity)

    def _lesson_activity(self, course_id: str, lesson_id: str) -> dict[str, Any]:
        found = self._lesson(course_id, lesson_id)
        definition: dict[str, Any] = {"type": v.LESSON}
        if found is not None:
            loaded, lesson = found
            definition = {
                "type": _LESSON_TYPES[lesson.type],
                "name": {loaded.course.source_locale: lesson.title},
            }
        return {
            "objectType": "Activity",
            "id": f"{self.home}/xapi/courses/{course_id}/lessons/{lesson_id}",
            "definition": definition,
        }

    def question(self, course_id: str, lesson_id: str, question_id: str) -> dict[str, Any]:
        """A question as a cmi.interaction, with its interaction type and correct responses."""
        return self._cached(("question", course_id, lesson_id, question_id), self._question)

    def _question(self, course_id: str, lesson_id: str, question_id: str) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "objectType": "Activity",
            "id": f"{self.home}/xapi/courses/{course_id}/lessons/{lesson_id}"
            f"/questions/{question_id}",
        }
        found = self._lesson(course_id, lesson_id)
        if found is not None:
            loaded, lesson = found
            for question in lesson.questions:
                if question.id == question_id:
                    activity["definition"] = interaction_definition(
                        question, loaded.course.source_locale
                    )
        return activity

    def _lesson(self, course_id: str, lesson_id: str) -> tuple[LoadedCourse, Lesson] | None:
        loaded = self.courses.get(course_id)
        lesson = None if loaded is None else loaded.lessons.get(lesson_id)
        return None if loaded is None or lesson is None else (loaded, lesson)

    # Parts of the statement -------------------------------------------------------------

    def _object(self, kind: EventType, event: EventRecord) -> dict[str, Any]:
        course_id, lesson_id = event.course_id, event.lesson_id
        if kind is EventType.ANSWERED and course_id and lesson_id and event.question_id:
            return self.question(course_id, lesson_id, event.question_id)
        if kind in _LESSON_EVENTS and course_id and lesson_id:
            return self.lesson(course_id, lesson_id)
        if course_id:
            return self.course(course_id)
        return self.platform()

    def _context(self, kind: EventType, event: EventRecord) -> dict[str, Any]:
        context: dict[str, Any] = {"platform": "learnbot"}
        if event.cohort_id is not None:
            context["registration"] = self._registration(event.learner_key, event.cohort_id)
        grouping = []
        if event.course_id and (kind in _LESSON_EVENTS or kind is EventType.ANSWERED):
            grouping.append(self.course(event.course_id))
        if event.cohort_id is not None:
            grouping.append(self.cohort(event.cohort_id))
        activities: dict[str, Any] = {}
        if grouping:
            activities["grouping"] = grouping
        if kind is EventType.ANSWERED and event.course_id and event.lesson_id:
            activities["parent"] = [self.lesson(event.course_id, event.lesson_id)]
        if activities:
            context["contextActivities"] = activities
        if event.locale:
            context["language"] = language_tag(event.locale)
        extensions: dict[str, Any] = {}
        if event.channel:
            extensions[v.EXT_CHANNEL] = event.channel
        if extensions:
            context["extensions"] = extensions
        return context


_LESSON_EVENTS = frozenset({EventType.LESSON_DELIVERED, EventType.LESSON_COMPLETED})


def _result(kind: EventType, event: EventRecord, score: Score | None) -> dict[str, Any]:
    detail = event.detail or {}
    result: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    if kind is EventType.ANSWERED:
        value = detail.get("value")
        if isinstance(value, str) and value:
            result["response"] = xapi_response(str(detail.get("kind", "")), value)
        if event.correct is not None:
            result["success"] = event.correct
        if event.attempt is not None:
            extensions[v.EXT_ATTEMPT] = event.attempt
    elif kind in (EventType.LESSON_COMPLETED, EventType.COURSE_COMPLETED):
        result["completion"] = True
        if score is not None and score.graded > 0:
            result["score"] = {
                "raw": score.right,
                "min": 0,
                "max": score.graded,
                "scaled": round(score.right / score.graded, 4),
            }
    elif kind is EventType.LANGUAGE_CHANGED and event.locale:
        result["response"] = language_tag(event.locale)
    elif kind is EventType.PROFILE_UPDATED and detail.get("field"):
        # Which answer changed, never the answer: a role or a gender is personal data.
        extensions[v.EXT_FIELD] = str(detail["field"])
    elif kind is EventType.STOPPED:
        extensions[v.EXT_REASON] = "provider-opt-out" if detail.get("by") else "stop"
    elif kind is EventType.PAUSED:
        extensions[v.EXT_REASON] = str(detail.get("reason") or "no-answer")
    elif kind is EventType.ENROLLED and detail.get("source"):
        extensions[v.EXT_SOURCE] = str(detail["source"])
    if extensions:
        result["extensions"] = extensions
    return result
