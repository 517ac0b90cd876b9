"""Funnel: per lesson in course order, delivered, answered, completed, and where learners left."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.common import (
    cohort_clause,
    course_clause,
    courses_of,
    event_not_sandbox,
    in_days,
    in_range,
    learner_not_sandbox,
    of_type,
)
from bot.analytics.figures import (
    N_,
    Cell,
    Chart,
    Column,
    Figure,
    FigureContext,
    Filters,
    Scope,
    figure,
)
from bot.domain import EventType, LearnerStatus
from bot.store.repository import ENROLLMENT_COMPLETED
from bot.store.tables import enrollments, events, learners, lesson_days

STAGES = (EventType.LESSON_DELIVERED, EventType.ANSWERED, EventType.LESSON_COMPLETED)
# The learner statuses that end a course early: said STOP, stopped answering reminders, or
# the provider cannot reach the address.
LEFT = (LearnerStatus.STOPPED, LearnerStatus.PAUSED, LearnerStatus.UNREACHABLE)


async def stage_counts(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> dict[tuple[str, str, str], int]:
    """(course, lesson, event type) -> learners with such an event in the range.

    Deliveries are summed from the per-day rollup (the filters' dates are whole UTC days, as
    its rows are). A lesson's questions are asked in order, so the learners who answered it
    are those who answered its first question: only those events are read, as completions
    are (ix_events_stage, index only). Counts are per enrollment (a learner in two cohorts
    counts in each).
    """
    counts: dict[tuple[str, str, str], int] = {}
    days = lesson_days.c
    delivered = (
        select(days.course_id, days.lesson_id, func.sum(days.delivered))
        .where(
            cohort_clause(days.cohort_id, filters, scope),
            course_clause(days.course_id, filters),
            *in_days(days.day, filters),
        )
        .group_by(days.course_id, days.lesson_id)
    )
    for course_id, lesson_id, count in await conn.execute(delivered):
        counts[(str(course_id), str(lesson_id), str(EventType.LESSON_DELIVERED))] = int(count)
    shared = [
        cohort_clause(events.c.cohort_id, filters, scope),
        course_clause(events.c.course_id, filters),
        event_not_sandbox(),
        *in_range(events.c.occurred_at, filters),
    ]
    # count(*), not count(DISTINCT learner_key): the distinct set costs a sort of every
    # row. A lesson is completed once per enrollment; it is delivered (and its first
    # question answered at attempt 1) again only when a trainer pushes it again.
    learners_ = func.count()
    completed = str(EventType.LESSON_COMPLETED)
    query = (
        select(events.c.course_id, events.c.lesson_id, learners_)
        .where(of_type(EventType.LESSON_COMPLETED), *shared)
        .group_by(events.c.course_id, events.c.lesson_id)
    )
    for course_id, lesson_id, count in await conn.execute(query):
        counts[(str(course_id), str(lesson_id), completed)] = int(count)
    for course in courses_of(context, filters):
        for lesson_id in course.lessons:
            first = course.lessons[lesson_id].questions[0].id
            query = select(learners_).where(
                of_type(EventType.ANSWERED),
                events.c.course_id == course.id,
                events.c.lesson_id == lesson_id,
                events.c.question_id == first,
                events.c.attempt == 1,
                *shared,
            )
            answered = int((await conn.execute(query)).scalar_one())
            counts[(course.id, lesson_id, str(EventType.ANSWERED))] = answered
    return counts


async def left_at(
    conn: AsyncConnection, filters: Filters, scope: Scope
) -> dict[tuple[str, str | None, str], int]:
    """(course, current lesson, learner status) -> enrollments not completed whose learner left.

    Where they are now: the lesson the enrollment was on when the learner stopped, paused or
    became unreachable (None: before the first lesson).
    """
    query = (
        select(
            enrollments.c.course_id,
            enrollments.c.lesson_id,
            learners.c.status,
            func.count(),
        )
        .select_from(enrollments.join(learners, learners.c.id == enrollments.c.learner_id))
        .where(
            cohort_clause(enrollments.c.cohort_id, filters, scope),
            course_clause(enrollments.c.course_id, filters),
            enrollments.c.status != ENROLLMENT_COMPLETED,
            learners.c.status.in_([str(status) for status in LEFT]),
            learner_not_sandbox(),
        )
        .group_by(enrollments.c.course_id, enrollments.c.lesson_id, learners.c.status)
    )
    return {
        (str(course_id), lesson_id, str(status)): int(count)
        for course_id, lesson_id, status, count in await conn.execute(query)
    }


async def funnel(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> Sequence[Figure]:
    """Per lesson: learners delivered, answering, completing; drop-off; where learners left.

    Drop-off is the share of the previous lesson's completers who did not complete this one
    (negative when a push had learners complete it out of order).
    """
    counts = await stage_counts(conn, filters, scope, context)
    left = await left_at(conn, filters, scope)
    rows: list[list[Cell]] = []
    for course in courses_of(context, filters):
        before = {str(status): left.get((course.id, None, str(status)), 0) for status in LEFT}
        if any(before.values()):
            empty: list[Cell] = [course.id, "", None, None, None, None, None]
            rows.append(empty + [before[str(status)] for status in LEFT])
        previous: int | None = None
        for position, lesson_id in enumerate(course.lessons, start=1):
            delivered, answered, completed = (
                counts.get((course.id, lesson_id, str(stage)), 0) for stage in STAGES
            )
            drop_off = None if not previous else (previous - completed) / previous
            cells: list[Cell] = [course.id, lesson_id, position, delivered, answered, completed]
            rows.append(
                [*cells, drop_off, *(left.get((course.id, lesson_id, str(s)), 0) for s in LEFT)]
            )
            previous = completed
    return (
        figure(
            "funnel",
            N_("Lesson funnel"),
            COLUMNS,
            rows,
            chart=Chart("bar", "lesson", ("delivered", "answered", "completed")),
            note=N_(
                "Learners per lesson. Drop-off: the previous lesson's completers who did not "
                "complete this one. Stopped, paused and unreachable: learners who left there "
                "(a row with no lesson: before the first lesson)."
            ),
        ),
    )


COLUMNS = (
    Column("course", N_("Course")),
    Column("lesson", N_("Lesson")),
    Column("position", N_("Position"), "count"),
    Column("delivered", N_("Delivered"), "count"),
    Column("answered", N_("Answered"), "count"),
    Column("completed", N_("Completed"), "count"),
    Column("drop_off", N_("Drop-off"), "share"),
    Column("stopped", N_("Stopped (STOP)"), "count"),
    Column("paused", N_("Paused after reminders"), "count"),
    Column("unreachable", N_("Unreachable"), "count"),
)
