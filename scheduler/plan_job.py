"""The plan job: read due enrollments in pages, run the planner, write the outbox and state.

Each page is one transaction: a keyset-paginated SELECT of due enrollments with their learner,
one SELECT of the lessons they already have in the outbox, the enrollments grouped by what the
planner reads of them, the pure planner once per group, one `INSERT ... SELECT ... ON CONFLICT
(enrollment_id, lesson_id, kind) DO NOTHING` into `deliveries` per group's decision (and chunk
of ids), and a few `UPDATE enrollments SET next_due_at = ... WHERE id IN (...)` grouped by
value. Running it twice, or on two machines at once, inserts nothing twice: the unique key
decides.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.domain import DeliveryKind, LearnerStatus
from bot.store.tables import cohorts
from scheduler import plan_store
from scheduler.plan_store import Dialect
from scheduler.planner import (
    ACTIVE,
    CohortInput,
    Due,
    EnrollmentInput,
    Pause,
    Plan,
    Skip,
    plan,
)
from scheduler.schedule import ScheduleError, parse_schedule
from scheduler.timezones import TimeZoneError, learner_zone, zone

log = logging.getLogger(__name__)

PAGE_SIZE = 20_000  # enrollments per page: one transaction, a few statements


@dataclass(slots=True)
class PlanStats:
    """What one planning (or reminder) pass did."""

    examined: int = 0  # enrollments read
    planned: int = 0  # outbox rows the planner asked for
    inserted: int = 0  # rows actually inserted (the rest already existed)
    skipped: int = 0
    paused: int = 0
    rescheduled: int = 0  # enrollments whose next_due_at changed
    reasons: dict[str, int] = field(default_factory=dict)  # skip reason -> count

    def add(self, result: Plan, inserted: int) -> None:
        """Count one page's plan."""
        self.planned += len(result.due)
        self.inserted += inserted
        self.skipped += len(result.skips)
        self.paused += len(result.pauses)
        self.rescheduled += len(result.next_due_at)
        for skip in result.skips:
            self.reasons[skip.reason] = self.reasons.get(skip.reason, 0) + 1


def lesson_orders(courses: Mapping[str, Any]) -> dict[str, list[str]]:
    """Course id -> lesson ids in order, from LoadedCourse values or plain lesson-id lists."""
    out: dict[str, list[str]] = {}
    for course_id, course in courses.items():
        if isinstance(course, Sequence) and not isinstance(course, str):
            out[course_id] = list(course)
        else:  # a bot.lessons.loader.LoadedCourse
            out[course_id] = list(course.course.lessons)
    return out


async def load_cohorts(conn: AsyncConnection) -> dict[int, CohortInput]:
    """Every cohort with a valid schedule and zone; a bad one is logged and left out."""
    rows = await conn.execute(
        select(
            cohorts.c.id,
            cohorts.c.time_zone,
            cohorts.c.start_date,
            cohorts.c.pacing,
            cohorts.c.schedule,
            cohorts.c.status,
        )
    )
    out: dict[int, CohortInput] = {}
    for row in rows:
        try:
            zone(row.time_zone)
            schedule = parse_schedule(row.schedule, pacing=row.pacing)
        except (ScheduleError, TimeZoneError) as exc:
            log.error("cohort %s: schedule not planned: %s", row.id, exc)
            continue
        out[row.id] = CohortInput(row.id, row.time_zone, schedule, row.start_date, row.status)
    return out


def to_inputs(
    rows: Sequence[Sequence[Any]],
    planned: Mapping[int, Mapping[str, datetime]],
    cohort_map: Mapping[int, CohortInput],
    d: Dialect,
) -> list[EnrollmentInput]:
    """Planner inputs from rows of plan_store.due_page, resolving each learner's zone."""
    out: list[EnrollmentInput] = []
    empty: Mapping[str, datetime] = {}
    active = LearnerStatus.ACTIVE.value
    from_ts = d.from_ts
    for row in rows:
        (e_id, learner_id, cohort_id, course_id, lesson_id, question_index) = row[:6]
        (next_due_at, awaiting_since, reminders_sent, channel, address, time_zone) = row[6:12]
        cohort = cohort_map.get(cohort_id)
        if cohort is None:
            continue
        out.append(
            EnrollmentInput(
                e_id,
                learner_id,
                cohort_id,
                course_id,
                channel,
                learner_zone(time_zone, address, cohort.time_zone, channel=channel),
                active,
                ACTIVE,
                lesson_id,
                question_index,
                from_ts(next_due_at),
                from_ts(awaiting_since),
                reminders_sent or 0,
                planned.get(e_id, empty),
            )
        )
    return out


def log_plan(result: Plan) -> None:
    """Log every decision: dues and skips at DEBUG (there may be 100,000), pauses at INFO."""
    if log.isEnabledFor(logging.DEBUG):
        for d in result.due:
            log.debug(
                "enrollment %s: %s %s due %s: %s",
                d.enrollment_id,
                d.kind.value,
                d.lesson_id,
                d.due_at.isoformat(),
                d.reason,
            )
        for skip in result.skips:
            log.debug(
                "enrollment %s: skipped %s at %s: %s",
                skip.enrollment_id,
                skip.lesson_id or "slot",
                skip.at.isoformat() if skip.at else "-",
                skip.reason,
            )
    for pause in result.pauses:
        log.info(
            "enrollment %s: learner %s paused: %s",
            pause.enrollment_id,
            pause.learner_id,
            pause.reason,
        )


# A page's due rows grouped by everything the planner reads of an enrollment (cohort, zone,
# course, lesson position, open question, next_due_at, reminders, planned lessons): the
# planner decides once per group and the decision is copied to every member. One cohort due
# at one slot is a handful of groups, so 100,000 enrollments cost a few planner calls.
_GroupKey = tuple[Any, ...]
_PHONE_CHANNELS = (None, "sms", "whatsapp")


def group_rows(
    rows: Sequence[Sequence[Any]],
    planned: Mapping[int, Mapping[str, datetime]],
    cohort_map: Mapping[int, CohortInput],
) -> dict[_GroupKey, list[Sequence[Any]]]:
    """Rows of plan_store.due_page grouped by the planner's inputs (members in id order).

    The key is the row's cohort .. reminders_sent, channel and explicit zone columns, plus the
    zone derived from a phone number (SMS/WhatsApp) and the lessons already planned.
    """
    groups: dict[_GroupKey, list[Sequence[Any]]] = {}
    for row in rows:
        key = (*row[2:10], row[11])
        channel = row[9]
        if channel in _PHONE_CHANNELS:  # the number may decide the zone: resolve it
            cohort = cohort_map.get(row[2])
            if cohort is not None:
                key += (learner_zone(row[11], row[10], cohort.time_zone, channel=channel),)
        if planned and row[0] in planned:
            # Lessons already in the outbox, as a value: a cohort's members share them too.
            key += (frozenset(planned[row[0]].items()),)
        members = groups.get(key)
        if members is None:
            groups[key] = [row]
        else:
            members.append(row)
    return groups


def group_inputs(
    groups: Mapping[_GroupKey, Sequence[Sequence[Any]]],
    planned: Mapping[int, Mapping[str, datetime]],
    cohort_map: Mapping[int, CohortInput],
    d: Dialect,
) -> tuple[list[EnrollmentInput], dict[int, Sequence[Sequence[Any]]]]:
    """One planner input per group (its first member) and representative id -> members."""
    members_of: dict[int, Sequence[Sequence[Any]]] = {}
    firsts: list[Sequence[Any]] = []
    for members in groups.values():
        members_of[members[0][0]] = members
        firsts.append(members[0])
    return to_inputs(firsts, planned, cohort_map, d), members_of


def expand_plan(result: Plan, members_of: Mapping[int, Sequence[Sequence[Any]]]) -> Plan:
    """The plan of every member, from the plan of each group's representative.

    Only built when the decisions are logged one by one (DEBUG), or in tests.
    """
    out = Plan()
    for due in result.due:
        for row in members_of[due.enrollment_id]:
            out.due.append(
                Due(row[0], row[1], row[9], due.lesson_id, due.kind, due.due_at, due.reason)
            )
    for skip in result.skips:
        for row in members_of[skip.enrollment_id]:
            out.skips.append(Skip(row[0], skip.reason, skip.at, skip.lesson_id))
    for pause in result.pauses:
        for row in members_of[pause.enrollment_id]:
            out.pauses.append(Pause(row[0], row[1], pause.lesson_id, pause.reason))
    for e_id, value in result.next_due_at.items():
        for row in members_of[e_id]:
            out.next_due_at[row[0]] = value
    for e_id, count in result.reminders_sent.items():
        for row in members_of[e_id]:
            out.reminders_sent[row[0]] = count
    return out


async def write_grouped_plan(
    conn: AsyncConnection,
    d: Dialect,
    result: Plan,
    members_of: Mapping[int, Sequence[Sequence[Any]]],
    now: datetime,
    stats: PlanStats,
) -> None:
    """Insert every member's outbox rows, move next_due_at on, and count it all in `stats`."""
    for due in result.due:
        # A group shares its channel (part of the key), so the representative's is everyone's.
        ids = [row[0] for row in members_of[due.enrollment_id]]
        stats.planned += len(ids)
        stats.inserted += await plan_store.insert_outbox_for(
            conn,
            d,
            ids,
            lesson_id=due.lesson_id,
            kind=due.kind.value,
            channel=due.channel,
            due_at=due.due_at,
            now=now,
        )
    for skip in result.skips:
        n = len(members_of[skip.enrollment_id])
        stats.skipped += n
        stats.reasons[skip.reason] = stats.reasons.get(skip.reason, 0) + n
    stats.paused += sum(len(members_of[p.enrollment_id]) for p in result.pauses)
    by_value: dict[datetime, list[int]] = {}
    for e_id, value in result.next_due_at.items():
        ids = [row[0] for row in members_of[e_id]]
        by_value.setdefault(value, []).extend(ids)
        stats.rescheduled += len(ids)
    await plan_store.set_column_groups(conn, d, "next_due_at", by_value)


async def plan_page(
    conn: AsyncConnection,
    *,
    after: int,
    now: datetime,
    cohort_map: Mapping[int, CohortInput],
    orders: Mapping[str, Sequence[str]],
    misfire_grace: timedelta,
    stats: PlanStats,
    page_size: int = PAGE_SIZE,
) -> int | None:
    """Plan one page of due enrollments after id `after`; the last id read, None when done."""
    d = Dialect(conn)
    rows = await plan_store.due_page(conn, d, after=after, now=now, limit=page_size)
    if not rows:
        return None
    low, high = int(rows[0][0]), int(rows[-1][0])
    planned = await plan_store.planned_lessons(conn, d, low, high, DeliveryKind.LESSON.value)
    groups = group_rows(rows, planned, cohort_map)
    inputs, members_of = group_inputs(groups, planned, cohort_map, d)
    result = plan(
        now, cohort_map.values(), inputs, orders, misfire_grace=misfire_grace, reminders=False
    )
    stats.examined += len(rows)
    await write_grouped_plan(conn, d, result, members_of, now, stats)
    if result.pauses or log.isEnabledFor(logging.DEBUG):
        log_plan(expand_plan(result, members_of))
    return high


class PageStep(Protocol):
    """Work one page of enrollments after id `after`: the last id read, None when done."""

    async def __call__(
        self,
        conn: AsyncConnection,
        *,
        after: int,
        cohort_map: Mapping[int, CohortInput],
        orders: Mapping[str, Sequence[str]],
        stats: PlanStats,
    ) -> int | None: ...


async def run_pages(
    engine: AsyncEngine, courses: Mapping[str, Any], *, now: datetime, what: str, step: PageStep
) -> PlanStats:
    """One pass over every enrollment, a page per transaction (planning and reminders)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    orders = lesson_orders(courses)
    stats = PlanStats()
    async with engine.connect() as conn:
        cohort_map = await load_cohorts(conn)
    if not cohort_map:
        return stats
    after: int | None = 0
    while after is not None:
        async with engine.begin() as conn:
            after = await step(conn, after=after, cohort_map=cohort_map, orders=orders, stats=stats)
    log_stats(what, stats)
    return stats


async def plan_once(
    engine: AsyncEngine,
    courses: Mapping[str, Any],
    *,
    now: datetime,
    misfire_grace: timedelta,
    page_size: int = PAGE_SIZE,
) -> PlanStats:
    """One planning pass over every due enrollment: outbox rows in, next_due_at moved on.

    `courses` maps course ids to LoadedCourse (or to lesson-id lists). Safe to run twice and
    on several machines at once.
    """
    step = partial(plan_page, now=now, misfire_grace=misfire_grace, page_size=page_size)
    return await run_pages(engine, courses, now=now, what="planned", step=step)


def log_stats(what: str, stats: PlanStats) -> None:
    """One INFO line per pass that did something, with counts per skip reason."""
    if not (stats.planned or stats.skipped or stats.paused):
        return
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(stats.reasons.items()))
    log.info(
        "%s %d deliveries (%d new), skipped %d, paused %d, rescheduled %d enrollments; %s",
        what,
        stats.planned,
        stats.inserted,
        stats.skipped,
        stats.paused,
        stats.rescheduled,
        reasons or "no skips",
    )
