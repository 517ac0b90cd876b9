"""Questions: per graded question, how learners answered at their first attempt.

Facility index: the share of learners right at the first attempt (the first attempt, because
feedback after a wrong answer teaches the right one). Discrimination index: the corrected
point-biserial correlation between being right on the item and the learner's score on the
course's other graded items (their first attempts), so an item does not correlate with itself.
Unlike the upper-minus-lower 27% index it needs no ranking of learners, only sums, which SQL
computes in one pass. An item is flagged when its facility is below 0.5, that is when most
learners miss it, once at least MIN_GROUP_SIZE learners have answered it (one or two wrong
answers are not a pattern).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Integer, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.common import (
    cohort_clause,
    course_clause,
    courses_of,
    event_not_sandbox,
    in_days,
    in_range,
    lesson_order,
    of_type,
)
from bot.analytics.console.stats import correlation, share
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
from bot.domain import EventType
from bot.lessons.models import MultipleSelect, SingleChoice, TrueFalse
from bot.store.rollups import MAX_OPTIONS
from bot.store.tables import events, question_days, question_sums

FLAG_BELOW = 0.5


def first_graded_answers(filters: Filters, scope: Scope) -> list[ColumnElement[bool]]:
    """Clauses for the first attempts at graded questions, in scope and filters."""
    return [
        of_type(EventType.ANSWERED),
        events.c.attempt == 1,
        events.c.correct.is_not(None),
        cohort_clause(events.c.cohort_id, filters, scope),
        course_clause(events.c.course_id, filters),
        event_not_sandbox(),
        *in_range(events.c.occurred_at, filters),
    ]


def answer_value() -> Any:
    """The normalised answer an `answered` event keeps: "2", "1,3", "true", a rating."""
    return events.c.detail["value"].as_string()


@dataclass(slots=True)
class QuestionCounts:
    """One question's first attempts: how many, how many right, each option's choosers."""

    n: int = 0
    right: int = 0
    options: list[int] = field(default_factory=lambda: [0] * MAX_OPTIONS)


def _rollup_scope(table: Any, filters: Filters, scope: Scope) -> list[ColumnElement[bool]]:
    return [
        cohort_clause(table.c.cohort_id, filters, scope),
        course_clause(table.c.course_id, filters),
    ]


async def question_rows(
    conn: AsyncConnection, filters: Filters, scope: Scope
) -> dict[tuple[str, str, str], QuestionCounts]:
    """(course, lesson, question) -> first attempts, right, and how often each option was chosen.

    From the per-day rollup: the filters' dates are whole UTC days, as its rows are.
    """
    t = question_days.c
    key_columns = (t.course_id, t.lesson_id, t.question_id)
    options = [func.sum(t[f"option_{n}"]) for n in range(1, MAX_OPTIONS + 1)]
    query = (
        select(
            *key_columns,
            func.sum(t.answered).label("n"),
            func.sum(t.right_first).label("right"),
            *options,
        )
        .where(*_rollup_scope(question_days, filters, scope), *in_days(t.day, filters))
        .group_by(*key_columns)
    )
    found: dict[tuple[str, str, str], QuestionCounts] = {}
    for row in await conn.execute(query):
        found[(row.course_id, row.lesson_id, row.question_id)] = QuestionCounts(
            n=int(row.n or 0),
            right=int(row.right or 0),
            options=[int(count or 0) for count in row[5:]],
        )
    return found


async def discrimination(
    conn: AsyncConnection, filters: Filters, scope: Scope
) -> dict[tuple[str, str, str], float | None]:
    """(course, lesson, question) -> corrected point-biserial r against the rest of the score.

    Over every date, from the rollup of score sums; with a date range, from the log (the
    scores then count only the first attempts in the range).
    """
    if filters.since is not None or filters.until is not None:
        return await discrimination_in_range(conn, filters, scope)
    t = question_sums.c
    key_columns = (t.course_id, t.lesson_id, t.question_id)
    query = (
        select(
            *key_columns,
            *(func.sum(t[name]).label(name) for name in ("n", "sx", "st", "stt", "sxt")),
        )
        .where(*_rollup_scope(question_sums, filters, scope))
        .group_by(*key_columns)
    )
    found: dict[tuple[str, str, str], float | None] = {}
    for row in await conn.execute(query):
        n, sx = float(row.n or 0), float(row.sx or 0)
        if not n:
            continue
        # rest = t - x, and x * x = x: the sums of the rest follow from those of t.
        st, stt, sxt = float(row.st or 0), float(row.stt or 0), float(row.sxt or 0)
        sy, syy, sxy = st - sx, stt - 2 * sxt + sx, sxt - sx
        found[(str(row.course_id), str(row.lesson_id), str(row.question_id))] = correlation(
            n, sx, sy, sx, syy, sxy
        )
    return found


async def discrimination_in_range(
    conn: AsyncConnection, filters: Filters, scope: Scope
) -> dict[tuple[str, str, str], float | None]:
    """`discrimination` from the log itself, each learner scored on their answers in range."""
    right = events.c.correct.cast(Integer)
    # Each answer with its learner's score on the course (a window, not a join back: the
    # join made PostgreSQL loop over the learners' totals once per answer).
    total = func.sum(right).over(partition_by=(events.c.learner_key, events.c.course_id))
    scored = (
        select(
            events.c.course_id,
            events.c.lesson_id,
            events.c.question_id,
            right.label("x"),
            total.label("total"),
        )
        .where(*first_graded_answers(filters, scope))
        .subquery()
    )
    rest = scored.c.total - scored.c.x
    query = select(
        scored.c.course_id,
        scored.c.lesson_id,
        scored.c.question_id,
        func.count().label("n"),
        func.sum(scored.c.x).label("sx"),
        func.sum(rest).label("sy"),
        func.sum(rest * rest).label("syy"),
        func.sum(scored.c.x * rest).label("sxy"),
    ).group_by(scored.c.course_id, scored.c.lesson_id, scored.c.question_id)
    found: dict[tuple[str, str, str], float | None] = {}
    for row in await conn.execute(query):
        sx = float(row.sx or 0)
        found[(str(row.course_id), str(row.lesson_id), str(row.question_id))] = correlation(
            float(row.n), sx, float(row.sy or 0), sx, float(row.syy or 0), float(row.sxy or 0)
        )
    return found


async def questions(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> Sequence[Figure]:
    """Per graded question in course order: facility, discrimination, options chosen; flags."""
    found = await question_rows(conn, filters, scope)
    indexes = await discrimination(conn, filters, scope)
    courses = courses_of(context, filters)
    order = lesson_order(courses)
    prompts: dict[tuple[str, str, str], str] = {}
    for course in courses:
        for lesson_id, lesson in course.lessons.items():
            for question in lesson.questions:
                if isinstance(question, SingleChoice | TrueFalse | MultipleSelect):
                    prompts[(course.id, lesson_id, question.id)] = question.prompt
    keys = sorted(
        found,
        key=lambda k: (order.get((k[0], k[1]), len(order)), k[0], k[1], k[2]),
    )
    rows: list[list[Cell]] = []
    flagged: set[int] = set()
    for key in keys:
        counts = found[key]
        n, right = counts.n, counts.right
        facility = share(right, n)
        if facility is not None and facility < FLAG_BELOW and n >= MIN_GROUP_SIZE:
            flagged.add(len(rows))
        options = counts.options
        cells: list[Cell] = [key[0], key[1], key[2], prompts.get(key, ""), n, right, facility]
        rows.append([*cells, indexes.get(key), *options])
    return (
        figure(
            "questions",
            N_("Questions"),
            COLUMNS,
            rows,
            chart=Chart("bar", "question", ("facility",), x_also=("lesson",)),
            flagged=frozenset(flagged),
            note=N_(
                "First attempts only. Facility: the share right. Discrimination: the "
                "point-biserial correlation with the rest of the learner's score. Flagged: "
                "most learners miss it (facility below 0.5, at least 5 answers). True/false: "
                "option 1 is true, option 2 false."
            ),
        ),
    )


COLUMNS = (
    Column("course", N_("Course")),
    Column("lesson", N_("Lesson")),
    Column("question", N_("Question")),
    Column("prompt", N_("Prompt")),
    Column("answered", N_("Learners answering"), "count"),
    Column("right_first", N_("Right at the first attempt"), "count"),
    Column("facility", N_("Facility index"), "share"),
    Column("discrimination", N_("Discrimination index"), "number"),
    Column("option_1", N_("Option 1"), "count"),
    Column("option_2", N_("Option 2"), "count"),
    Column("option_3", N_("Option 3"), "count"),
    Column("option_4", N_("Option 4"), "count"),
    Column("option_5", N_("Option 5"), "count"),
)
