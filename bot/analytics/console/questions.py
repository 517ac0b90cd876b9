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
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.common import (
    cohort_clause,
    course_clause,
    courses_of,
    event_not_sandbox,
    in_range,
    lesson_order,
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
from bot.store.tables import events

MAX_OPTIONS = 5  # the lesson format allows 2 to 5 options
FLAG_BELOW = 0.5


def first_graded_answers(filters: Filters, scope: Scope) -> list[ColumnElement[bool]]:
    """Clauses for the first attempts at graded questions, in scope and filters."""
    return [
        events.c.type == str(EventType.ANSWERED),
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


def _chose(option: int) -> Any:
    # "1,3" chose 1 and 3: wrap in commas so option 1 does not match "10" (there is no 10).
    value = literal(",") + answer_value() + literal(",")
    true_false = {1: "true", 2: "false"}.get(option)
    hit = value.like(f"%,{option},%")
    if true_false is not None:
        hit = hit | (answer_value() == true_false)
    return func.sum(case((hit, 1), else_=0))


async def question_rows(
    conn: AsyncConnection, filters: Filters, scope: Scope
) -> dict[tuple[str, str, str], Any]:
    """(course, lesson, question) -> first attempts, right, and how often each option was chosen."""
    right = events.c.correct.cast(Integer)
    query = (
        select(
            events.c.course_id,
            events.c.lesson_id,
            events.c.question_id,
            func.count().label("n"),
            func.sum(right).label("right"),
            *(_chose(option).label(f"option_{option}") for option in range(1, MAX_OPTIONS + 1)),
        )
        .where(*first_graded_answers(filters, scope))
        .group_by(events.c.course_id, events.c.lesson_id, events.c.question_id)
    )
    return {
        (str(r.course_id), str(r.lesson_id), str(r.question_id)): r
        for r in await conn.execute(query)
    }


async def discrimination(
    conn: AsyncConnection, filters: Filters, scope: Scope
) -> dict[tuple[str, str, str], float | None]:
    """(course, lesson, question) -> corrected point-biserial r against the rest of the score."""
    right = events.c.correct.cast(Integer)
    totals = (
        select(
            events.c.learner_key,
            events.c.course_id,
            func.sum(right).label("total"),
        )
        .where(*first_graded_answers(filters, scope))
        .group_by(events.c.learner_key, events.c.course_id)
        .subquery()
    )
    rest = totals.c.total - right
    query = (
        select(
            events.c.course_id,
            events.c.lesson_id,
            events.c.question_id,
            func.count().label("n"),
            func.sum(right).label("sx"),
            func.sum(rest).label("sy"),
            func.sum(rest * rest).label("syy"),
            func.sum(right * rest).label("sxy"),
        )
        .select_from(
            events.join(
                totals,
                (totals.c.learner_key == events.c.learner_key)
                & (totals.c.course_id == events.c.course_id),
            )
        )
        .where(*first_graded_answers(filters, scope))
        .group_by(events.c.course_id, events.c.lesson_id, events.c.question_id)
    )
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
        row = found[key]
        n, right = int(row.n), int(row.right or 0)
        facility = share(right, n)
        if facility is not None and facility < FLAG_BELOW and n >= MIN_GROUP_SIZE:
            flagged.add(len(rows))
        options = [int(getattr(row, f"option_{o}") or 0) for o in range(1, MAX_OPTIONS + 1)]
        cells: list[Cell] = [key[0], key[1], key[2], prompts.get(key, ""), n, right, facility]
        rows.append([*cells, indexes.get(key), *options])
    return (
        figure(
            "questions",
            N_("Questions"),
            COLUMNS,
            rows,
            chart=Chart("bar", "question", ("facility",)),
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
