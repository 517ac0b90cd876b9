"""Who: the figures of the other pages by gender, role, country, locale and channel.

Each query groups by all five learner attributes at once (a small cube: a learner sits in
exactly one cell, so counts of distinct learners add up across cells), and SQL sums the
cells into each attribute's groups (`totals`); the gain cubes, a few cells, are summed
here. A group of fewer than MIN_GROUP_SIZE learners is held back; when that holds back
exactly one group of an attribute, the next smallest is held back too, or the first could
be worked out from the overview's totals by subtraction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, String, and_, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.common import (
    cohort_clause,
    course_clause,
    courses_of,
    event_not_sandbox,
    in_range,
    learner_not_sandbox,
    side_by_side,
    visible_cohorts,
)
from bot.analytics.console.gain import assessments_of, gain_figures, gain_sums, paired_scores
from bot.analytics.console.overview import ACTIVE_DAYS, lessons_done
from bot.analytics.console.questions import first_graded_answers
from bot.analytics.console.stats import share
from bot.analytics.figures import (
    MIN_GROUP_SIZE,
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
from bot.store.tables import (
    enrollment_progress,
    enrollments,
    events,
    learner_scores,
    learners,
    lesson_completions,
)

# (key, title, learners column): the attributes a learner is grouped by.
DIMENSIONS = (
    ("gender", N_("By gender"), learners.c.profile_gender),
    ("role", N_("By role"), learners.c.profile_role),
    ("country", N_("By country"), learners.c.profile_country),
    ("locale", N_("By language"), learners.c.locale),
    ("channel", N_("By channel"), learners.c.channel),
)
_ATTRIBUTES = [column for _, _, column in DIMENSIONS]
Cube = dict[tuple[Any, ...], Any]
_FIRST = len(_ATTRIBUTES)  # a cube row's figures follow its five attributes
Totals = list[dict[str, list[int]]]  # per attribute position: group -> the cells' summed columns


@dataclass(slots=True)
class _Group:
    learners: int = 0
    enrollments: int = 0
    completed: int = 0
    lessons: int = 0
    active: int = 0
    answers: int = 0
    right: int = 0
    gains: dict[str, float] = field(default_factory=dict)


async def cube(conn: AsyncConnection, query: Any) -> Cube:
    """A cube query's rows by cell (a tuple of the five attributes); {} for no query."""
    found: Cube = {}
    if query is None:
        return found
    for row in (await conn.execute(query)).all():  # all at once: thousands of cells
        found[tuple(row[: len(_ATTRIBUTES)])] = row
    return found


async def totals(conn: AsyncConnection, query: Any, width: int) -> Totals:
    """A cube's `width` figure columns summed into each attribute's groups, in SQL.

    The cube is computed once (a materialised CTE) and summed five ways: its thousands of
    cells summed in Python cost more than the SQL that made them.
    """
    found: Totals = [{} for _ in _ATTRIBUTES]
    if query is None:
        return found
    cells = query.cte("cube").prefix_with("MATERIALIZED")
    columns = list(cells.c)
    figures = columns[_FIRST : _FIRST + width]
    parts = [
        select(
            literal(position).label("position"),
            func.cast(columns[position], String).label("value"),
            *(func.sum(column).label(f"sum_{n}") for n, column in enumerate(figures)),
        ).group_by(columns[position])
        for position in range(_FIRST)
    ]
    for row in (await conn.execute(union_all(*parts))).all():
        value = row[1]
        found[int(row[0])]["" if value is None else str(value)] = [
            int(number or 0) for number in row[2:]
        ]
    return found


async def enrolled_query(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> Any:
    """Per cell: learners, enrollments, completed, teaching lessons completed (as the overview)."""
    courses = courses_of(context, filters)
    teaching = [(c.id, lesson_id) for c in courses for lesson_id in c.teaching_lessons()]
    per_course = {c.id: len(c.teaching_lessons()) for c in courses}
    required = {
        cohort_id: sum(per_course.get(course_id, 0) for course_id in course_ids)
        for cohort_id, _, course_ids in await visible_cohorts(conn, filters, scope)
    }
    per_enrollment = (
        select(
            enrollments.c.learner_id,
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
            enrollments.c.cohort_id.in_(sorted(required)),
            *in_range(enrollments.c.enrolled_at, filters),
        )
        .group_by(enrollments.c.id, enrollments.c.learner_id, enrollments.c.cohort_id)
        .subquery()
    )
    if not required:
        return None
    if filters.since is None and filters.until is None and filters.course_id is None:
        return _rolled_enrolled(filters, scope, required)
    needed = case(
        {cohort_id: n for cohort_id, n in required.items()},
        value=per_enrollment.c.cohort_id,
        else_=0,
    )
    complete = case((and_(needed > 0, per_enrollment.c.done >= needed), 1), else_=0)
    query = (
        select(
            *_ATTRIBUTES,
            func.count(learners.c.id.distinct()).label("learners"),
            func.count().label("enrollments"),
            func.sum(complete).label("completed"),
            func.sum(per_enrollment.c.done).label("lessons"),
        )
        .select_from(per_enrollment.join(learners, learners.c.id == per_enrollment.c.learner_id))
        .where(learner_not_sandbox())
        .group_by(*_ATTRIBUTES)
    )
    return query


def _rolled_enrolled(filters: Filters, scope: Scope, required: dict[int, int]) -> Any:
    """`enrolled_cube` over every date and course, from the per-enrollment rollup alone."""
    t = enrollment_progress.c
    cells = [t[column.name] for column in _ATTRIBUTES]
    needed = case({cohort_id: n for cohort_id, n in required.items()}, value=t.cohort_id, else_=0)
    complete = case((and_(needed > 0, t.lessons_done >= needed), 1), else_=0)
    return (
        select(
            *cells,
            func.count(t.learner_key.distinct()).label("learners"),
            func.count().label("enrollments"),
            func.sum(complete).label("completed"),
            func.sum(t.lessons_done).label("lessons"),
        )
        .where(cohort_clause(t.cohort_id, filters, scope), t.cohort_id.in_(sorted(required)))
        .group_by(*cells)
    )


def active_query(filters: Filters, scope: Scope, context: FigureContext) -> Any:
    """Per cell: learners with an event in the last ACTIVE_DAYS days."""
    query = (
        select(*_ATTRIBUTES, func.count(learners.c.id.distinct()).label("active"))
        .select_from(events.join(learners, learners.c.learner_key == events.c.learner_key))
        .where(
            cohort_clause(events.c.cohort_id, filters, scope),
            course_clause(events.c.course_id, filters),
            events.c.occurred_at > context.now - timedelta(days=ACTIVE_DAYS),
            events.c.occurred_at <= context.now,
            event_not_sandbox(),
        )
        .group_by(*_ATTRIBUTES)
    )
    return query


def answers_query(filters: Filters, scope: Scope) -> Any:
    """Per cell: first attempts at graded questions, and how many were right."""
    if filters.since is None and filters.until is None:
        # Every date: the per-learner rollup, which carries the learners' attributes.
        t = learner_scores.c
        cells = [t[column.name] for column in _ATTRIBUTES]
        rolled = (
            select(
                *cells,
                func.sum(t.answered).label("answers"),
                func.sum(t.right_first).label("right"),
            )
            .where(
                cohort_clause(t.cohort_id, filters, scope),
                course_clause(t.course_id, filters),
            )
            .group_by(*cells)
        )
        return rolled
    if scope.cohort_ids is not None or filters.cohort_id is not None:
        # A few cohorts: their answers (ix_events_cohort) joined to learners one by one.
        joined = (
            select(
                *_ATTRIBUTES,
                func.count().label("answers"),
                func.sum(events.c.correct.cast(Integer)).label("right"),
            )
            .select_from(events.join(learners, learners.c.learner_key == events.c.learner_key))
            .where(*first_graded_answers(filters, scope))
            .group_by(*_ATTRIBUTES)
        )
        return joined
    # Every cohort: summed per learner first (from ix_events_stage alone), then one learners
    # row each; joining each of the ~400,000 answers to its learner took twice as long.
    per_learner = (
        select(
            events.c.learner_key,
            func.count().label("answers"),
            func.sum(events.c.correct.cast(Integer)).label("right"),
        )
        .where(*first_graded_answers(filters, scope))
        .group_by(events.c.learner_key)
        .subquery()
    )
    query = (
        select(
            *_ATTRIBUTES,
            func.sum(per_learner.c.answers).label("answers"),
            func.sum(per_learner.c.right).label("right"),
        )
        .select_from(
            per_learner.join(learners, learners.c.learner_key == per_learner.c.learner_key)
        )
        .group_by(*_ATTRIBUTES)
    )
    return query


async def gain_cubes(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> list[tuple[int, Cube]]:
    """Per course with assessments: (items, per cell the sums of `gain_sums`)."""
    found = []
    for course in courses_of(context, filters):
        assessment = assessments_of(course)
        if assessment is None:
            continue
        paired = paired_scores(assessment, filters, scope)
        query = (
            select(*_ATTRIBUTES, *gain_sums(paired))
            .select_from(paired.join(learners, learners.c.learner_key == paired.c.learner_key))
            .group_by(*_ATTRIBUTES)
        )
        found.append((assessment.items, await cube(conn, query)))
    return found


def suppress(sizes: dict[str, int]) -> set[str]:
    """The groups to hold back: those under MIN_GROUP_SIZE, and one more if only one is."""
    small = {key for key, size in sizes.items() if size < MIN_GROUP_SIZE}
    if len(small) == 1 and len(sizes) > 1:
        # The one group could be had by subtraction: hold back the next smallest as well.
        rest = sorted((size, key) for key, size in sizes.items() if key not in small)
        small.add(rest[0][1])
    return small


def _add(
    groups: dict[str, _Group],
    cube: Cube,
    position: int,
    apply: Callable[[_Group, Any], None],
) -> None:
    for cell, row in cube.items():
        value = cell[position]
        key = "" if value is None else str(value)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group()
        apply(group, row)


_GAIN_SUMS = (
    "paired",
    "pre_sum",
    "post_sum",
    "gain_sum",
    "gain_squares",
    "rated",
    "pre_rating_sum",
    "post_rating_sum",
    "lift_sum",
    "lift_squares",
)


def _gain_into(key: str) -> Callable[[_Group, Any], None]:
    """Add a cell's gain sums (of course number `key`) into a group's."""

    def apply(group: _Group, row: Any) -> None:
        for name in _GAIN_SUMS:
            total = f"{key}:{name}"
            group.gains[total] = group.gains.get(total, 0.0) + float(getattr(row, name) or 0)

    return apply


class _Sums:
    """Attribute access over one course's summed gain columns (what gain_figures reads)."""

    def __init__(self, sums: dict[str, float], key: str) -> None:
        self._sums, self._key = sums, key

    def __getattr__(self, name: str) -> float:
        return self._sums.get(f"{self._key}:{name}", 0.0)


def breakdown(
    position: int,
    enrolled: Totals,
    active: Totals,
    answered: Totals,
    gains: Iterable[tuple[int, Cube]],
) -> tuple[list[list[Cell]], int]:
    """One attribute's rows (groups by size, largest first) and how many groups were held back."""
    groups: dict[str, _Group] = {}
    for key, (learners_, enrollments_, completed, lessons) in enrolled[position].items():
        group = groups.setdefault(key, _Group())
        group.learners, group.enrollments = learners_, enrollments_
        group.completed, group.lessons = completed, lessons
    for key, (active_,) in active[position].items():
        groups.setdefault(key, _Group()).active = active_
    for key, (answers, right) in answered[position].items():
        group = groups.setdefault(key, _Group())
        group.answers, group.right = answers, right
    gains = list(gains)
    for index, (_, cube) in enumerate(gains):
        _add(groups, cube, position, _gain_into(str(index)))
    held = suppress({key: group.learners for key, group in groups.items()})
    rows: list[list[Cell]] = []
    for key, group in sorted(groups.items(), key=lambda item: (-item[1].learners, item[0])):
        if key in held:
            continue
        # Gains of several courses: the first course with pairs (a pathway usually has one).
        gain_mean: float | None = None
        normalised: float | None = None
        for index, (items, _) in enumerate(gains):
            sums = _Sums(group.gains, str(index))
            if sums.paired:
                found = gain_figures(sums, items)
                gain_mean, normalised = found.gain.mean, found.normalised
                break
        rows.append(
            [
                key,
                group.learners,
                group.active,
                share(group.completed, group.enrollments),
                share(group.lessons, group.enrollments),
                share(group.right, group.answers),
                gain_mean,
                normalised,
            ]
        )
    return rows, len(held)


async def who(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> Sequence[Figure]:
    """One figure per attribute: its groups' learners, activity, completion, scores, gain."""

    async def enrolled(own: AsyncConnection) -> Totals:
        return await totals(own, await enrolled_query(own, filters, scope, context), 4)

    # Each cube groups a table of 100,000 rows or more: they run side by side.
    enrolled_totals, active_totals, answered_totals = await side_by_side(
        conn,
        enrolled,
        lambda own: totals(own, active_query(filters, scope, context), 1),
        lambda own: totals(own, answers_query(filters, scope), 2),
    )
    gains = await gain_cubes(conn, filters, scope, context)
    figures = []
    for position, (key, title, _) in enumerate(DIMENSIONS):
        rows, held = breakdown(position, enrolled_totals, active_totals, answered_totals, gains)
        figures.append(
            figure(
                f"by_{key}",
                title,
                (Column("group", GROUP_LABELS[key]), *COLUMNS),
                rows,
                chart=Chart("bar", "group", ("completion_rate", "facility")),
                suppressed=held,
                note=NOTE,
            )
        )
    return tuple(figures)


GROUP_LABELS = {
    "gender": N_("Gender"),
    "role": N_("Role"),
    "country": N_("Country"),
    "locale": N_("Language"),
    "channel": N_("Channel"),
}
COLUMNS = (
    Column("learners", N_("Learners"), "count"),
    Column("active", N_("Active in the last 7 days"), "count"),
    Column("completion_rate", N_("Completion rate"), "share"),
    Column("mean_lessons", N_("Mean lessons completed"), "number"),
    Column("facility", N_("Right at the first attempt"), "share"),
    Column("mean_gain", N_("Mean gain (items)"), "number"),
    Column("normalised_gain", N_("Normalised gain"), "number"),
)
NOTE = N_(
    "Groups of fewer than 5 learners are not shown, so that nobody can be singled out (nor "
    "the next smallest group when only one is held back). An empty group: not given."
)
