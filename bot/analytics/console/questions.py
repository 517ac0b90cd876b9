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


@dataclass(slots=True)
class QuestionCounts:
    """One question's first attempts: how many, how many right, each option's choosers."""

    n: int = 0
    right: int = 0
    options: list[int] = field(default_factory=lambda: [0] * MAX_OPTIONS)


def chosen_options(value: str | None) -> list[int]:
    """The option numbers (1-based) in a normalised answer: "1,3", "2", "true" (1), "false"."""
    if value in ("true", "false"):
        return [1 if value == "true" else 2]
    return [int(part) for part in (value or "").split(",") if part.strip().isdigit()]


def right_options(question: object) -> list[int]:
    """The options a right answer to a graded question chooses."""
    if isinstance(question, SingleChoice):
        return [question.answer]
    if isinstance(question, MultipleSelect):
        return sorted(question.answers)
    if isinstance(question, TrueFalse):
        return [1 if question.answer else 2]
    return []


async def question_rows(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> dict[tuple[str, str, str], QuestionCounts]:
    """(course, lesson, question) -> first attempts, right, and how often each option was chosen.

    Counts come from ix_events_stage alone. A right answer chose the right options (the
    course says which), so only the wrong answers' values are read from the rows.
    """
    found: dict[tuple[str, str, str], QuestionCounts] = {}
    key_columns = (events.c.course_id, events.c.lesson_id, events.c.question_id)
    query = (
        select(*key_columns, events.c.correct, func.count().label("n"))
        .where(*first_graded_answers(filters, scope))
        .group_by(*key_columns, events.c.correct)
    )
    for row in await conn.execute(query):
        counts = found.setdefault((row.course_id, row.lesson_id, row.question_id), QuestionCounts())
        counts.n += int(row.n)
        if row.correct:
            counts.right += int(row.n)
    for (course_id, lesson_id, question_id), counts in found.items():
        course = context.courses.get(course_id)
        lesson = course.lessons.get(lesson_id) if course is not None else None
        question = (
            next((q for q in lesson.questions if q.id == question_id), None) if lesson else None
        )
        for option in right_options(question):
            if 1 <= option <= MAX_OPTIONS:
                counts.options[option - 1] += counts.right
    value = answer_value().label("value")
    wrong = (
        select(*key_columns, value, func.count().label("n"))
        .where(*first_graded_answers(filters, scope), events.c.correct.is_(False))
        .group_by(*key_columns, value)
    )
    for row in await conn.execute(wrong):
        counts = found.setdefault((row.course_id, row.lesson_id, row.question_id), QuestionCounts())
        for option in chosen_options(row.value):
            if 1 <= option <= MAX_OPTIONS:
                counts.options[option - 1] += int(row.n)
    return found


async def discrimination(
    conn: AsyncConnection, filters: Filters, scope: Scope
) -> dict[tuple[str, str, str], float | None]:
    """(course, lesson, question) -> corrected point-biserial r against the rest of the score."""
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
    found = await question_rows(conn, filters, scope, context)
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
