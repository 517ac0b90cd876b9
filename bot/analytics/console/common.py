"""What every console query shares: the reader's scope, the filters, the sandbox, the courses.

The date filters are UTC days, both ends included. They restrict what happened (an event, an
answer, a completion, a delivery) to that range; the overview also counts only the
enrollments made in it. Every clause here is on an indexed column of the table it names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, false, literal_column, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.figures import FigureContext, Filters, Scope
from bot.domain import ChannelName, EventType
from bot.lessons.loader import LoadedCourse
from bot.store.tables import cohorts, events, learners

SANDBOX = ChannelName.SANDBOX.value
T = TypeVar("T")


async def side_by_side(
    conn: AsyncConnection, *reads: Callable[[AsyncConnection], Awaitable[T]]
) -> list[T]:
    """Run independent reads at once, the first on `conn`, each other on a connection of its
    own; their results in order.

    For a page whose figures each scan many rows: it waits for the slowest scan, not their
    sum. PostgreSQL runs them in separate backends, SQLite in aiosqlite's threads (its WAL
    readers do not block one another).
    """

    async def on_its_own(read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with conn.engine.connect() as own:
            return await read(own)

    first, *others = reads
    return list(await asyncio.gather(first(conn), *(on_its_own(read) for read in others)))


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of a day."""
    return datetime.combine(day, time.min, UTC)


def in_range(column: Any, filters: Filters) -> list[ColumnElement[bool]]:
    """Clauses keeping `column` (a timestamp) within the filters' days."""
    clauses: list[ColumnElement[bool]] = []
    if filters.since is not None:
        clauses.append(column >= day_start(filters.since))
    if filters.until is not None:
        clauses.append(column < day_start(filters.until + timedelta(days=1)))
    return clauses


def until_moment(filters: Filters, context: FigureContext) -> datetime:
    """The end of the range: the day after `until`, or now."""
    if filters.until is None:
        return context.now
    return min(context.now, day_start(filters.until + timedelta(days=1)))


def in_days(column: Any, filters: Filters) -> list[ColumnElement[bool]]:
    """Clauses keeping `column` (a rollup's UTC day) within the filters' days."""
    clauses: list[ColumnElement[bool]] = []
    if filters.since is not None:
        clauses.append(column >= filters.since)
    if filters.until is not None:
        clauses.append(column <= filters.until)
    return clauses


def of_type(*types: EventType) -> ColumnElement[bool]:
    """The event is of one of these types, written as literals, not parameters.

    On PostgreSQL ix_events_stage leaves lesson_delivered out (migration 0016): a query may
    read it only if the planner can prove its type is another, and a generic plan's
    parameters prove nothing.
    """
    values: list[ColumnElement[str]] = [literal_column(f"'{kind.value}'") for kind in types]
    return events.c.type == values[0] if len(values) == 1 else events.c.type.in_(values)


def cohort_clause(column: Any, filters: Filters, scope: Scope) -> ColumnElement[bool]:
    """`column` (a cohort id) is one the reader may see and, if asked, the chosen one."""
    clauses: list[ColumnElement[bool]] = []
    if scope.cohort_ids is not None:
        if not scope.cohort_ids:
            return false()
        clauses.append(column.in_(sorted(scope.cohort_ids)))
    if filters.cohort_id is not None:
        clauses.append(column == filters.cohort_id)
    return and_(true(), *clauses)


def course_clause(column: Any, filters: Filters) -> ColumnElement[bool]:
    """`column` (a course id) is the chosen course, if one is chosen."""
    return true() if filters.course_id is None else column == filters.course_id


def event_not_sandbox() -> ColumnElement[bool]:
    """Events not from the public sandbox, read off the event's own channel (no join).

    Every event the dialogue and the dispatcher log carries the learner's channel, and a
    learner's channel never changes, so this is `export.not_sandbox` without the learners row.
    """
    return or_(events.c.channel.is_(None), events.c.channel != SANDBOX)


def learner_not_sandbox() -> ColumnElement[bool]:
    """Learners who did not come through the public sandbox."""
    return learners.c.channel != SANDBOX


def learner_id_not_sandbox(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """`column` (a learner id) is not a sandbox learner's, without joining learners per row.

    The sandbox's learners are few, found through the (channel, address) unique index: the
    database builds that small set once instead of looking up each row's learner.
    """
    sandbox = select(learners.c.id).where(learners.c.channel == SANDBOX)
    return column.not_in(sandbox.scalar_subquery())


def courses_of(context: FigureContext, filters: Filters) -> list[LoadedCourse]:
    """The courses the filters ask for, in a stable order (all when none is chosen)."""
    if filters.course_id is not None:
        course = context.courses.get(filters.course_id)
        return [] if course is None else [course]
    return [context.courses[key] for key in sorted(context.courses)]


def lesson_order(courses: Iterable[LoadedCourse]) -> dict[tuple[str, str], int]:
    """(course id, lesson id) -> its position across the courses, in course order."""
    order: dict[tuple[str, str], int] = {}
    for course in courses:
        for lesson_id in course.lessons:
            order[(course.id, lesson_id)] = len(order)
    return order


async def visible_cohorts(
    conn: AsyncConnection, filters: Filters, scope: Scope
) -> list[tuple[int, str, list[str]]]:
    """(id, name, course ids) of the cohorts in scope and filters, by id."""
    query = (
        select(cohorts.c.id, cohorts.c.name, cohorts.c.course_ids)
        .where(cohort_clause(cohorts.c.id, filters, scope))
        .order_by(cohorts.c.id)
    )
    found = []
    for row in await conn.execute(query):
        course_ids = [str(x) for x in (row.course_ids or [])]
        if filters.course_id is None or filters.course_id in course_ids:
            found.append((int(row.id), str(row.name), course_ids))
    return found


def pairs_clause(
    course_column: Any, lesson_column: Any, pairs: Sequence[tuple[str, str]]
) -> ColumnElement[bool]:
    """(course, lesson) is one of `pairs`, grouped by course so it stays one IN per course."""
    by_course: dict[str, list[str]] = {}
    for course_id, lesson_id in pairs:
        by_course.setdefault(course_id, []).append(lesson_id)
    if not by_course:
        return false()
    return or_(
        *(
            and_(course_column == course_id, lesson_column.in_(lesson_ids))
            for course_id, lesson_ids in sorted(by_course.items())
        )
    )
