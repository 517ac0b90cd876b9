"""Overview: every cohort in scope, its learners, their activity and how far they got."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.common import (
    cohort_clause,
    course_clause,
    courses_of,
    event_not_sandbox,
    in_range,
    learner_id_not_sandbox,
    pairs_clause,
    until_moment,
    visible_cohorts,
)
from bot.analytics.console.stats import median_of_counts, share
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
from bot.store.tables import cohorts, enrollment_progress, enrollments, events, lesson_completions

ACTIVE_DAYS = 7


def lessons_done(teaching: list[tuple[str, str]], filters: Filters, context: FigureContext) -> Any:
    """Count of an enrollment's completed teaching lessons (lesson_completions joined).

    The join is on the enrollment alone and the lessons are picked here: an IN list in the
    join would seek the primary key once per lesson for every enrollment.
    """
    counted = pairs_clause(lesson_completions.c.course_id, lesson_completions.c.lesson_id, teaching)
    if filters.until is not None:  # the completion time is in the row, not the index
        counted = and_(counted, lesson_completions.c.completed_at < until_moment(filters, context))
    return func.count(case((counted, lesson_completions.c.lesson_id)))


async def completion_histograms(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> dict[int, dict[int, int]]:
    """Per cohort, {teaching lessons completed: enrollments}, for the enrollments in the filters.

    Assessments and surveys are not lessons completed (course.yaml marks them); completions
    after the end of the range are not counted yet.
    """
    histograms: dict[int, dict[int, int]] = {}
    if filters.since is None and filters.until is None and filters.course_id is None:
        # Every date and course: the per-enrollment rollup, read off its index alone.
        t = enrollment_progress.c
        rolled = (
            select(t.cohort_id, t.lessons_done, func.count())
            .where(cohort_clause(t.cohort_id, filters, scope))
            .group_by(t.cohort_id, t.lessons_done)
        )
        for cohort_id, done, count in await conn.execute(rolled):
            histograms.setdefault(int(cohort_id), {})[int(done)] = int(count)
        return histograms
    teaching = [
        (course.id, lesson_id)
        for course in courses_of(context, filters)
        for lesson_id in course.teaching_lessons()
    ]
    per_enrollment = (
        select(
            enrollments.c.cohort_id,
            lessons_done(teaching, filters, context).label("done"),
        )
        .select_from(
            enrollments.outerjoin(
                lesson_completions, lesson_completions.c.enrollment_id == enrollments.c.id
            )
        )
        .where(
            cohort_clause(enrollments.c.cohort_id, filters, scope),
            learner_id_not_sandbox(enrollments.c.learner_id),
            *in_range(enrollments.c.enrolled_at, filters),
        )
        .group_by(enrollments.c.id, enrollments.c.cohort_id)
        .subquery()
    )
    query = select(
        per_enrollment.c.cohort_id, per_enrollment.c.done, func.count().label("enrollments")
    ).group_by(per_enrollment.c.cohort_id, per_enrollment.c.done)
    for cohort_id, done, count in await conn.execute(query):
        histograms.setdefault(int(cohort_id), {})[int(done)] = int(count)
    return histograms


async def active_learners(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> dict[int, int]:
    """Per cohort, the learners with an event in the last ACTIVE_DAYS days (before now)."""
    query = (
        select(events.c.cohort_id, func.count(events.c.learner_key.distinct()))
        .where(
            cohort_clause(events.c.cohort_id, filters, scope),
            events.c.occurred_at > context.now - timedelta(days=ACTIVE_DAYS),
            events.c.occurred_at <= context.now,
            course_clause(events.c.course_id, filters),
            event_not_sandbox(),
        )
        .group_by(events.c.cohort_id)
    )
    return {int(cohort_id): int(count) for cohort_id, count in await conn.execute(query)}


async def last_activity(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> dict[int, datetime]:
    """Per cohort, its latest event up to the end of the range."""
    # One backward index walk per cohort (ix_events_cohort), stopping at the first event that
    # is not the sandbox's: a max() over the cohort's events would read all of them.
    latest = (
        select(events.c.occurred_at)
        .where(
            events.c.cohort_id == cohorts.c.id,
            events.c.occurred_at < until_moment(filters, context),
            *in_range(events.c.occurred_at, Filters(since=filters.since)),  # `since` only
            course_clause(events.c.course_id, filters),
            event_not_sandbox(),
        )
        .order_by(events.c.occurred_at.desc())
        .limit(1)
        .correlate(cohorts)
        .scalar_subquery()
    )
    query = select(cohorts.c.id, latest).where(cohort_clause(cohorts.c.id, filters, scope))
    return {int(cohort_id): at for cohort_id, at in await conn.execute(query) if at is not None}


async def overview(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> Sequence[Figure]:
    """Per cohort: enrolled, active in the last 7 days, completion, median, last activity."""
    histograms = await completion_histograms(conn, filters, scope, context)
    active = await active_learners(conn, filters, scope, context)
    latest = await last_activity(conn, filters, scope, context)
    teaching = {
        course.id: len(course.teaching_lessons()) for course in courses_of(context, filters)
    }
    rows: list[list[Cell]] = []
    for cohort_id, name, course_ids in await visible_cohorts(conn, filters, scope):
        histogram = histograms.get(cohort_id, {})
        enrolled = sum(histogram.values())
        # A pathway is completed when the teaching lessons of each of its courses are.
        required = sum(teaching.get(course_id, 0) for course_id in course_ids)
        completed = sum(n for done, n in histogram.items() if required and done >= required)
        rows.append(
            [
                cohort_id,
                name,
                enrolled,
                active.get(cohort_id, 0),
                share(completed, enrolled),
                median_of_counts(histogram),
                latest.get(cohort_id),
            ]
        )
    return (
        figure(
            "cohorts",
            N_("Cohorts"),
            COLUMNS,
            rows,
            chart=Chart("bar", "cohort", ("enrolled", "active")),
            note=N_(
                "Learners enrolled in the chosen dates; active: any activity in the last 7 days; "
                "lessons completed leave out the assessments and surveys."
            ),
        ),
    )


COLUMNS = (
    Column("cohort_id", N_("Cohort id"), "count"),
    Column("cohort", N_("Cohort")),
    Column("enrolled", N_("Learners enrolled"), "count"),
    Column("active", N_("Active in the last 7 days"), "count"),
    Column("completion_rate", N_("Completion rate"), "share"),
    Column("median_lessons", N_("Median lessons completed"), "number"),
    Column("last_activity", N_("Last activity"), "datetime"),
)
