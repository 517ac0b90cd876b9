"""A small hand-built world whose console figures are known by hand (see the tests' comments).

Cohort North (Tom's): 16 learners n00-n15 and a sandbox learner, who must never count.
Cohort South (Una's): 3 learners s0-s2, who answer everything the other way, so a leak of
South into North's figures changes them. The tests read only: one world per module.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import EventType
from bot.store.events import EventRow, append_events
from bot.store.tables import answers, cohorts, deliveries, enrollments, learners, lesson_completions

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
START = NOW - timedelta(days=30)
COURSE = "digital-skills"
SECRET = "console-test-secret-key"
PRICES = {"SN": 0.031, "KE": 0.0079}
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
NORTH = [f"n{i:02d}" for i in range(16)]
SOUTH = ["s0", "s1", "s2"]
SANDBOX = "sandbox-learner"

# Pre- and post-assessment items right (q1, q2, q3) and the confidence rating (q4).
PRE = {
    "n00": ((True, False, False), 2),
    "n01": ((False, True, False), 3),
    "n02": ((True, True, False), 2),
    "n03": ((False, False, False), 1),
    **{f"n{i:02d}": ((True, True, True), 3) for i in range(4, 9)},
    **{f"n{i:02d}": ((False, True, False), 3) for i in range(9, 15)},
    **{name: ((True, True, True), 5) for name in SOUTH},
    SANDBOX: ((False, False, False), 1),
}
POST = {
    "n00": ((True, True, True), 4),
    "n01": ((True, True, False), 4),
    "n02": ((True, True, True), 3),
    "n03": ((True, False, True), 4),
    **{name: ((False, False, False), 1) for name in SOUTH},
    SANDBOX: ((True, True, True), 5),
}
# The assessments' right and wrong answers per item (q1, q3 single choice 1; q2 false).
_RIGHT = {"q1": ("1", "2"), "q2": ("false", "true"), "q3": ("1", "3")}
# user-centred-design q1 (right: 2), first attempts; n06 and n07 get it right at attempt 2.
UCD_FIRST = {
    **{f"n{i:02d}": "2" for i in range(6)},
    "n06": "1",
    "n07": "1",
    "n08": "3",
    **{name: "1" for name in SOUTH},
    SANDBOX: "1",
}
# privacy-security-ethics q1 (multiple select, right: 1,3,5).
PRIVACY_Q1 = {
    "n00": "1,3,5",
    "n01": "1,3,5",
    "n02": "1,3",
    "n03": "1",
    "n04": "2,4",
    "n05": "3,5",
}
SURVEY_Q1 = {"n00": 5, "n01": 4, "n02": 4, "n03": 3, "n04": 5, SANDBOX: 1}
SURVEY_Q2 = {"n00": 2, "n01": 2, "n02": 1}
FREE_TEXT = {"n00": "I will test forms with users", "n01": "Ask before collecting data"}


@dataclass
class World:
    """Ids of what was inserted, by the names above."""

    north: int = 0
    south: int = 0
    learner: dict[str, dict[str, Any]] = field(default_factory=dict)
    enrollment: dict[str, int] = field(default_factory=dict)
    latest: dict[int, datetime] = field(default_factory=dict)  # cohort -> last real event


def _profile(name: str) -> dict[str, Any]:
    if name == SANDBOX:
        return {"channel": "sandbox", "address": "sandbox-session-1", "profile_gender": "female"}
    if name in SOUTH:
        index = SOUTH.index(name)
        return {
            "channel": "telegram",
            "address": f"2000{index}",
            "profile_gender": "female",
            "profile_role": "planner",
            "profile_country": "TZ",
            "locale": "sw",
        }
    i = int(name[1:])
    if i <= 8:
        channel, address = "telegram", f"1000{i:02d}"
    elif i == 9:
        channel, address = "whatsapp", "+254711000009"
    elif i <= 14:
        channel, address = "sms", f"+2217700000{i:02d}"
    else:
        channel, address = "sms", "+254700000015"  # a Kenyan number, whatever the profile says
    role = "planner" if i <= 5 else "clerk" if i <= 10 else None if i <= 14 else "driver"
    return {
        "channel": channel,
        "address": address,
        "profile_gender": "female" if i <= 7 else "male",
        "profile_role": role,
        "profile_country": "KE" if i <= 9 else "SN",
        "locale": "en" if i <= 9 else "fr",
    }


# Where learners left: their status and the lesson their enrollment is on.
LEFT = {
    "n12": ("stopped", "user-centred-design"),
    "n13": ("paused", "user-centred-design"),
    "n14": ("unreachable", "privacy-security-ethics"),
    "n15": ("stopped", "pre-assessment"),
}


class _Log:
    def __init__(self, world: World) -> None:
        self.world = world
        self.events: list[EventRow] = []
        self.completions: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []

    def event(self, name: str, type_: EventType, at: datetime, **values: Any) -> None:
        learner = self.world.learner[name]
        cohort = learner["cohort_id"]
        self.events.append(
            EventRow(
                type=type_,
                learner_key=learner["learner_key"],
                cohort_id=cohort,
                course_id=COURSE,
                channel=learner["channel"],
                occurred_at=at,
                **values,
            )
        )
        if learner["channel"] != "sandbox":
            self.world.latest[cohort] = max(at, self.world.latest.get(cohort, at))

    def answer(
        self,
        name: str,
        at: datetime,
        lesson: str,
        question: str,
        kind: str,
        value: str,
        correct: bool | None,
        attempt: int = 1,
    ) -> None:
        detail = {"kind": kind} if kind == "free_text" else {"kind": kind, "value": value}
        self.event(
            name,
            EventType.ANSWERED,
            at,
            lesson_id=lesson,
            question_id=question,
            correct=correct,
            attempt=attempt,
            detail=detail,
        )
        self.answers.append(
            {
                "enrollment_id": self.world.enrollment[name],
                "course_id": COURSE,
                "lesson_id": lesson,
                "question_id": question,
                "attempt": attempt,
                "response": value,
                "correct": correct,
                "answered_at": at,
            }
        )

    def lesson(self, name: str, lesson: str, at: datetime, *, completed: bool) -> None:
        self.event(name, EventType.LESSON_DELIVERED, at, lesson_id=lesson, locale="en")
        if completed:
            done = at + timedelta(minutes=5)
            self.event(name, EventType.LESSON_COMPLETED, done, lesson_id=lesson)
            self.completions.append(
                {
                    "enrollment_id": self.world.enrollment[name],
                    "course_id": COURSE,
                    "lesson_id": lesson,
                    "completed_at": done,
                }
            )

    def assessment(self, name: str, lesson: str, at: datetime, spec: Any) -> None:
        (items, rating) = spec
        for question, right in zip(("q1", "q2", "q3"), items, strict=True):
            value = _RIGHT[question][0 if right else 1]
            kind = "true_false" if question == "q2" else "single_choice"
            self.answer(name, at, lesson, question, kind, value, right)
        self.answer(name, at, lesson, "q4", "rating", str(rating), None)


async def build_world(conn: AsyncConnection) -> World:
    """Insert the world (see the module docstring) and return its ids."""
    world = World()
    for attribute, name in (("north", "North"), ("south", "South")):
        result = await conn.execute(
            cohorts.insert().returning(cohorts.c.id),
            {
                "name": name,
                "join_code": name.upper(),
                "course_ids": [COURSE],
                "time_zone": "Africa/Nairobi",
                "pacing": "self_paced",
                "status": "active",
                "created_at": START,
                "open_to_sandbox": attribute == "north",
            },
        )
        setattr(world, attribute, int(result.scalar_one()))
    everyone = [*NORTH, *SOUTH, SANDBOX]
    for index, name in enumerate(everyone):
        profile = _profile(name)
        status, lesson = LEFT.get(name, ("active", None))
        row = {
            "learner_key": str(uuid.UUID(int=index + 1)),
            "status": status,
            "created_at": START,
            "updated_at": START,
            **profile,
        }
        learner_id = (
            await conn.execute(learners.insert().returning(learners.c.id), row)
        ).scalar_one()
        cohort_id = world.south if name in SOUTH else world.north
        world.learner[name] = {**row, "id": int(learner_id), "cohort_id": cohort_id}
        enrollment_id = (
            await conn.execute(
                enrollments.insert().returning(enrollments.c.id),
                {
                    "learner_id": learner_id,
                    "cohort_id": cohort_id,
                    "course_id": COURSE,
                    "lesson_id": lesson,
                    "status": "active",
                    "enrolled_at": START + timedelta(minutes=index),
                },
            )
        ).scalar_one()
        world.enrollment[name] = int(enrollment_id)
    log = _Log(world)
    day = timedelta(days=1)
    for index, name in enumerate(everyone):
        t = START + timedelta(minutes=index)
        log.event(name, EventType.ENROLLED, t)
        # Everyone gets the pre-assessment; n15 never answers it (and stopped).
        answered_pre = name in PRE
        log.lesson(name, "pre-assessment", t + timedelta(hours=1), completed=answered_pre)
        if answered_pre:
            log.assessment(name, "pre-assessment", t + timedelta(hours=1), PRE[name])
        # user-centred-design: delivered to n00-n13, South and the sandbox learner.
        if name in UCD_FIRST or name in ("n09", "n10", "n11", "n12", "n13"):
            at = t + 2 * day
            log.lesson(name, "user-centred-design", at, completed=name in UCD_FIRST)
            if name in UCD_FIRST:
                value = UCD_FIRST[name]
                right = value == "2"
                log.answer(name, at, "user-centred-design", "q1", "single_choice", value, right)
                if value != "2":
                    log.answer(name, at, "user-centred-design", "q1", "single_choice", "2", True, 2)
                log.answer(name, at, "user-centred-design", "q2", "free_text", "a thought", None)
        if name in PRIVACY_Q1 or name == "n14":
            at = t + 4 * day
            log.lesson(name, "privacy-security-ethics", at, completed=name in ("n00", "n01", "n02"))
            if name in PRIVACY_Q1:
                value = PRIVACY_Q1[name]
                log.answer(
                    name,
                    at,
                    "privacy-security-ethics",
                    "q1",
                    "multiple_select",
                    value,
                    value == "1,3,5",
                )
                log.answer(name, at, "privacy-security-ethics", "q2", "true_false", "false", True)
        if name == "n00":
            for offset, lesson in enumerate(TEACHING[2:]):
                log.lesson(name, lesson, t + (6 + offset) * day, completed=True)
        if name in POST:
            log.lesson(name, "post-assessment", t + 20 * day, completed=True)
            log.assessment(name, "post-assessment", t + 20 * day, POST[name])
        if name in SURVEY_Q1:
            at = NOW - 2 * day + timedelta(minutes=index)
            if name == SANDBOX:
                at = NOW - timedelta(hours=1)
            log.lesson(name, "feedback-survey", at, completed=False)
            log.answer(name, at, "feedback-survey", "q1", "rating", str(SURVEY_Q1[name]), None)
            if name in SURVEY_Q2:
                log.answer(name, at, "feedback-survey", "q2", "rating", str(SURVEY_Q2[name]), None)
            if name in FREE_TEXT:
                log.answer(name, at, "feedback-survey", "q3", "free_text", FREE_TEXT[name], None)
        if name in SOUTH:
            log.event(name, EventType.LANGUAGE_CHANGED, NOW - day, locale="sw")
    await append_events(conn, log.events)
    await conn.execute(answers.insert(), log.answers)
    await conn.execute(lesson_completions.insert(), log.completions)
    await conn.execute(deliveries.insert(), _deliveries(world))
    return world


def _deliveries(world: World) -> list[dict[str, Any]]:
    """The pre-assessment's outbox rows (and a reply, a template), with known outcomes."""
    rows: list[dict[str, Any]] = []

    def add(name: str, **values: Any) -> None:
        learner = world.learner[name]
        at = START + timedelta(hours=1)
        rows.append(
            {
                "learner_id": learner["id"],
                "enrollment_id": world.enrollment[name],
                "lesson_id": "pre-assessment",
                "kind": "lesson",
                "channel": learner["channel"],
                "status": "sent",
                "due_at": at,
                "created_at": at,
                "sent_at": at,
                "updated_at": at,
                # Every row names every column: an executemany takes its columns from the first.
                "locale": None,
                "segments": None,
                "error_code": None,
                **values,
            }
        )

    for name in NORTH[:9]:
        add(name)  # Telegram: sent (it confirms no delivery)
    add("n09", status="delivered")
    add("n09", kind="template", locale="en", status="read")
    for name in NORTH[10:14]:
        add(name, status="delivered", segments=2)
    add("n14", status="failed", error_code="30003", sent_at=None)
    add("n15", status="sent", segments=3)
    add("n00", enrollment_id=None, lesson_id="reply:1", kind="reply")  # no cohort: admins only
    for name in SOUTH[:2]:
        add(name)
    add("s2", status="failed", error_code="retryable", sent_at=None)
    add(SANDBOX)
    return rows
