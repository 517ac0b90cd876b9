"""Queries of the learner dialogue: learners, cohorts, enrollments, answers, deliveries.

Every function takes an open connection (`Db`: an `AsyncConnection`, or a sync
connection behind `SyncDb`) so a caller can run one message's reads and writes in one
transaction; none of them commits.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Integer, and_, bindparam, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult, Dialect, Row
from sqlalchemy.sql.base import Executable

from bot.domain import DeliveryKind, DeliveryStatus, LearnerStatus
from bot.store.cohort_names import localized_name, stored_names
from bot.store.fastpath import FastStatements, hot
from bot.store.tables import (
    answers,
    cohorts,
    deliveries,
    enrollments,
    learners,
    lesson_completions,
)

SELF_PACED = "self_paced"
ENROLLMENT_ACTIVE = "active"
ENROLLMENT_COMPLETED = "completed"


class Db(Protocol):
    """What the queries need of a connection: `AsyncConnection` and `SyncDb` both fit."""

    @property
    def dialect(self) -> Dialect:
        """The database dialect (for ON CONFLICT flavours)."""
        ...

    async def execute(
        self, statement: Executable, parameters: Any = None, /
    ) -> CursorResult[*tuple[Any, ...]]:
        """Run one statement (a list of parameter dicts runs it as executemany)."""
        ...


class SyncDb:
    """A sync `Connection` used from a coroutine running in the thread that owns it."""

    def __init__(self, connection: Connection, fast: FastStatements | None = None) -> None:
        self.connection = connection
        # SQLite only: `hot` statements skip SQLAlchemy's per-statement work (fastpath.py).
        self.fast = fast
        self._driver = cast(sqlite3.Connection, connection.connection.driver_connection)

    @property
    def dialect(self) -> Dialect:
        """The database dialect."""
        return self.connection.dialect

    async def execute(
        self, statement: Executable, parameters: Any = None, /
    ) -> CursorResult[*tuple[Any, ...]]:
        """Run one statement, blocking this (worker) thread: SQLite calls take microseconds."""
        if self.fast is not None:
            # A SyncDb with `fast` is the SQLite runner's: its driver is a sqlite3.Connection.
            result = self.fast.execute(self._driver, statement, parameters)
            if result is not None:
                # FastResult offers what callers of hot statements read (rows, rowcount).
                return cast("CursorResult[*tuple[Any, ...]]", result)
        return self.connection.execute(statement, parameters)


@dataclass(slots=True)
class LearnerRecord:
    """The learner columns the dialogue reads."""

    id: int
    learner_key: str
    channel: str
    address: str | None
    locale: str | None
    time_zone: str | None
    status: str
    dialogue_state: str | None
    profile_role: str | None
    profile_country: str | None
    profile_gender: str | None
    last_inbound_at: datetime | None = None
    updated_at: datetime | None = None  # a turn that leaves a menu open writes it (prompts)


@dataclass(slots=True)
class EnrollmentRecord:
    """A learner's place in a cohort, with the cohort's pathway and pacing."""

    id: int
    cohort_id: int
    course_id: str
    lesson_id: str | None
    question_index: int | None
    attempt: int
    status: str
    course_ids: list[str]
    pacing: str
    time_zone: str
    awaiting_since: datetime | None = None  # when the open question was sent


@dataclass(frozen=True, slots=True)
class CohortRecord:
    """A cohort learners can join by code."""

    id: int
    name: str
    join_code: str
    course_ids: list[str]
    pacing: str
    time_zone: str
    status: str
    open_to_sandbox: bool = False  # whether the public /sandbox may join it
    names: Mapping[str, str] = field(default_factory=dict)  # the name per locale

    def name_in(self, locale: str) -> str:
        """The name learners read in `locale` (or a parent locale), else the cohort's name."""
        return localized_name(self.name, self.names, locale)


_LEARNER_COLUMNS = (
    learners.c.id,
    learners.c.learner_key,
    learners.c.channel,
    learners.c.address,
    learners.c.locale,
    learners.c.time_zone,
    learners.c.status,
    learners.c.dialogue_state,
    learners.c.profile_role,
    learners.c.profile_country,
    learners.c.profile_gender,
    learners.c.last_inbound_at,
    learners.c.updated_at,
)
_ENROLLMENT_COLUMNS = (
    enrollments.c.id.label("e_id"),
    enrollments.c.cohort_id,
    enrollments.c.course_id,
    enrollments.c.lesson_id,
    enrollments.c.question_index,
    enrollments.c.attempt,
    enrollments.c.status.label("e_status"),
    cohorts.c.course_ids,
    cohorts.c.pacing,
    cohorts.c.time_zone.label("c_time_zone"),
    enrollments.c.awaiting_since,
)

# The current enrollment is the learner's latest: joining a new cohort moves the dialogue there.
_latest_enrollment = (
    select(func.max(enrollments.c.id))
    .where(enrollments.c.learner_id == learners.c.id)
    .correlate(learners)
    .scalar_subquery()
)


def _learner(row: Any) -> LearnerRecord:
    return LearnerRecord(
        id=row.id,
        learner_key=row.learner_key,
        channel=row.channel,
        address=row.address,
        locale=row.locale,
        time_zone=row.time_zone,
        status=row.status,
        dialogue_state=row.dialogue_state,
        profile_role=row.profile_role,
        profile_country=row.profile_country,
        profile_gender=row.profile_gender,
        last_inbound_at=row.last_inbound_at,
        updated_at=row.updated_at,
    )


def _enrollment(row: Any) -> EnrollmentRecord | None:
    if row.e_id is None:
        return None
    return EnrollmentRecord(
        id=row.e_id,
        cohort_id=row.cohort_id,
        course_id=row.course_id,
        lesson_id=row.lesson_id,
        question_index=row.question_index,
        attempt=row.attempt,
        status=row.e_status,
        course_ids=list(row.course_ids),
        pacing=row.pacing,
        time_zone=row.c_time_zone,
        awaiting_since=row.awaiting_since,
    )


# Built once: statement construction and cache-key generation cost more than SQLite's work.
_LOAD_LEARNER = hot(
    select(*_LEARNER_COLUMNS, *_ENROLLMENT_COLUMNS)
    .select_from(
        learners.outerjoin(enrollments, enrollments.c.id == _latest_enrollment).outerjoin(
            cohorts, cohorts.c.id == enrollments.c.cohort_id
        )
    )
    .where(learners.c.channel == bindparam("channel"), learners.c.address == bindparam("address"))
)
_UPDATE_LEARNER = hot(learners.update().where(learners.c.id == bindparam("learner_id_")))
_UPDATE_ENROLLMENT = hot(
    enrollments.update().where(enrollments.c.id == bindparam("enrollment_id_"))
)
_INSERT_ANSWERS = hot(answers.insert())


async def load_learner(
    conn: Db, channel: str, address: str
) -> tuple[LearnerRecord, EnrollmentRecord | None] | None:
    """The learner at (channel, address) with their current enrollment, in one query."""
    row = (await conn.execute(_LOAD_LEARNER, {"channel": channel, "address": address})).first()
    if row is None:
        return None
    return _learner(row), _enrollment(row)


async def create_learner(conn: Db, channel: str, address: str, now: datetime) -> LearnerRecord:
    """A new active learner with a random opaque learner_key."""
    key = str(uuid.uuid4())
    result = await conn.execute(
        learners.insert().values(
            learner_key=key,
            channel=channel,
            address=address,
            status=LearnerStatus.ACTIVE.value,
            last_inbound_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    (learner_id,) = result.inserted_primary_key or (None,)
    assert learner_id is not None
    return LearnerRecord(
        id=int(learner_id),
        learner_key=key,
        channel=channel,
        address=address,
        locale=None,
        time_zone=None,
        status=LearnerStatus.ACTIVE.value,
        dialogue_state=None,
        profile_role=None,
        profile_country=None,
        profile_gender=None,
    )


async def update_learner(conn: Db, learner_id: int, values: Mapping[str, Any]) -> None:
    """Set some learner columns (and updated_at if given)."""
    # SET columns come from the parameter names, so one prepared statement fits every set.
    await conn.execute(_UPDATE_LEARNER, {**values, "learner_id_": learner_id})


def _cohort(row: Row[Any]) -> CohortRecord:
    return CohortRecord(
        id=row.id,
        name=row.name,
        join_code=row.join_code,
        course_ids=list(row.course_ids),
        pacing=row.pacing,
        time_zone=row.time_zone,
        status=row.status,
        open_to_sandbox=bool(row.open_to_sandbox),
        names=stored_names(row.names),
    )


async def find_cohort(conn: Db, join_code: str) -> CohortRecord | None:
    """The cohort with this join code (codes are stored and matched upper-case)."""
    row = (
        await conn.execute(select(cohorts).where(cohorts.c.join_code == join_code.strip().upper()))
    ).first()
    return None if row is None else _cohort(row)


async def create_cohort(
    conn: Db,
    *,
    name: str,
    join_code: str,
    course_ids: Sequence[str],
    time_zone: str,
    now: datetime,
    pacing: str = SELF_PACED,
    schedule: Mapping[str, Any] | None = None,
    open_to_sandbox: bool = False,
) -> int:
    """Create a cohort, or return the id of the one that already has this join code."""
    code = join_code.strip().upper()
    existing = await find_cohort(conn, code)
    if existing is not None:
        return existing.id
    result = await conn.execute(
        cohorts.insert().values(
            name=name,
            join_code=code,
            course_ids=list(course_ids),
            time_zone=time_zone,
            pacing=pacing,
            schedule=dict(schedule) if schedule is not None else None,
            status="active",
            open_to_sandbox=open_to_sandbox,
            created_at=now,
        )
    )
    (cohort_id,) = result.inserted_primary_key or (None,)
    assert cohort_id is not None
    return int(cohort_id)


async def find_enrollment(
    conn: Db, learner_id: int, cohort: CohortRecord
) -> EnrollmentRecord | None:
    """The learner's enrollment in this cohort, if any."""
    row = (
        await conn.execute(
            select(enrollments).where(
                enrollments.c.learner_id == learner_id, enrollments.c.cohort_id == cohort.id
            )
        )
    ).first()
    if row is None:
        return None
    return EnrollmentRecord(
        id=row.id,
        cohort_id=cohort.id,
        course_id=row.course_id,
        lesson_id=row.lesson_id,
        question_index=row.question_index,
        attempt=row.attempt,
        status=row.status,
        course_ids=cohort.course_ids,
        pacing=cohort.pacing,
        time_zone=cohort.time_zone,
    )


async def create_enrollment(
    conn: Db, learner_id: int, cohort: CohortRecord, now: datetime
) -> EnrollmentRecord:
    """Enrol a learner at the start of the cohort's first course."""
    result = await conn.execute(
        enrollments.insert().values(
            learner_id=learner_id,
            cohort_id=cohort.id,
            course_id=cohort.course_ids[0],
            attempt=0,
            status=ENROLLMENT_ACTIVE,
            reminders_sent=0,
            enrolled_at=now,
        )
    )
    (enrollment_id,) = result.inserted_primary_key or (None,)
    assert enrollment_id is not None
    return EnrollmentRecord(
        id=int(enrollment_id),
        cohort_id=cohort.id,
        course_id=cohort.course_ids[0],
        lesson_id=None,
        question_index=None,
        attempt=0,
        status=ENROLLMENT_ACTIVE,
        course_ids=cohort.course_ids,
        pacing=cohort.pacing,
        time_zone=cohort.time_zone,
    )


async def update_enrollment(conn: Db, enrollment_id: int, values: Mapping[str, Any]) -> None:
    """Set some enrollment columns."""
    await conn.execute(_UPDATE_ENROLLMENT, {**values, "enrollment_id_": enrollment_id})


async def scheduled_enrollments(conn: Db, learner_id: int) -> list[tuple[int, datetime, str]]:
    """(enrollment id, next_due_at, cohort time zone) of a learner's planned active enrollments."""
    rows = await conn.execute(
        select(enrollments.c.id, enrollments.c.next_due_at, cohorts.c.time_zone)
        .select_from(enrollments.join(cohorts, cohorts.c.id == enrollments.c.cohort_id))
        .where(
            enrollments.c.learner_id == learner_id,
            enrollments.c.status == ENROLLMENT_ACTIVE,
            enrollments.c.next_due_at.is_not(None),
        )
        .order_by(enrollments.c.id)
    )
    return [(row.id, row.next_due_at, row.time_zone) for row in rows]


async def insert_answers(conn: Db, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record answers (columns of the answers table), in one statement."""
    if rows:
        await conn.execute(_INSERT_ANSWERS, list(rows))


async def record_lesson_sent(
    conn: Db,
    *,
    learner_id: int,
    enrollment_id: int,
    lesson_id: str,
    channel: str,
    locale: str,
    now: datetime,
) -> None:
    """Mark a lesson as sent in the outbox, creating its row or updating a planned one."""
    values = {
        "learner_id": learner_id,
        "enrollment_id": enrollment_id,
        "priority": 0,
        "lesson_id": lesson_id,
        "kind": DeliveryKind.LESSON.value,
        "channel": channel,
        "status": DeliveryStatus.SENT.value,
        "locale": locale,
        "due_at": now,
        "attempts": 1,
        "created_at": now,
        "sent_at": now,
        "updated_at": now,
    }
    # A scheduled cohort may already hold a pending row for this lesson: the learner asked
    # for it first, so it is now sent and the dispatcher must not send it again.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(deliveries).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["enrollment_id", "lesson_id", "kind"],
        set_={
            "status": statement.excluded.status,
            "channel": statement.excluded.channel,
            "locale": statement.excluded.locale,
            "sent_at": statement.excluded.sent_at,
            "updated_at": statement.excluded.updated_at,
        },
    )
    await conn.execute(statement)


_FIRST_TRY_SCORE = hot(
    select(
        func.count(),
        func.coalesce(func.sum(answers.c.correct.cast(Integer)), 0),
    ).where(
        answers.c.enrollment_id == bindparam("enrollment_id_"),
        answers.c.attempt == 1,
        answers.c.correct.is_not(None),
    )
)


async def first_try_score(
    conn: Db, enrollment_id: int, *, excluding: Iterable[str] = ()
) -> tuple[int, int]:
    """(graded questions answered, of which right at the first attempt) for an enrollment.

    `excluding` names lessons left out of the score: the assessments, which measure what a
    learner knew, not how they did in the course.
    """
    left_out = sorted(excluding)
    statement: Executable = _FIRST_TRY_SCORE
    if left_out:
        statement = _FIRST_TRY_SCORE.where(answers.c.lesson_id.not_in(left_out))
    row = (await conn.execute(statement, {"enrollment_id_": enrollment_id})).one()
    return int(row[0]), int(row[1])


_COMPLETED = hot(
    select(lesson_completions.c.lesson_id).where(
        lesson_completions.c.enrollment_id == bindparam("enrollment_id_"),
        lesson_completions.c.course_id == bindparam("course_id_"),
    )
)


async def completed_lessons(conn: Db, enrollment_id: int, course_id: str) -> set[str]:
    """The lesson ids of `course_id` this enrollment has completed."""
    rows = await conn.execute(
        _COMPLETED, {"enrollment_id_": enrollment_id, "course_id_": course_id}
    )
    return {str(row[0]) for row in rows}


async def record_lesson_completed(
    conn: Db, *, enrollment_id: int, course_id: str, lesson_id: str, now: datetime
) -> None:
    """Record that a lesson is completed; a second completion keeps the first time."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(lesson_completions)
        .values(
            enrollment_id=enrollment_id, course_id=course_id, lesson_id=lesson_id, completed_at=now
        )
        .on_conflict_do_nothing(index_elements=["enrollment_id", "course_id", "lesson_id"])
    )
    await conn.execute(statement)


async def delete_personal_data(
    conn: Db,
    learner: LearnerRecord,
    *,
    free_text_questions: Iterable[tuple[str, str, str]],
    now: datetime,
) -> None:
    """Remove a learner's personal data, keeping the opaque learner_key as a tombstone."""
    await conn.execute(
        learners.update()
        .where(learners.c.id == learner.id)
        .values(
            # A tombstone rather than NULL: unique per learner, and never a reachable address.
            address=f"deleted:{learner.learner_key}",
            name=None,
            locale=None,
            time_zone=None,
            profile_role=None,
            profile_country=None,
            profile_gender=None,
            dialogue_state=None,
            status=LearnerStatus.DELETED.value,
            last_inbound_at=None,
            updated_at=now,
        )
    )
    keys = list(free_text_questions)
    if keys:
        # Reflections may say anything about the learner: blank them, keep that they answered.
        mine = select(enrollments.c.id).where(enrollments.c.learner_id == learner.id)
        await conn.execute(
            answers.update()
            .where(
                and_(
                    answers.c.enrollment_id.in_(mine),
                    tuple_(answers.c.course_id, answers.c.lesson_id, answers.c.question_id).in_(
                        keys
                    ),
                )
            )
            .values(response="")
        )
