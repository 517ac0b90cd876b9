"""Survey: the distribution of each rating question; free-text answers for admins only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.common import (
    cohort_clause,
    courses_of,
    event_not_sandbox,
    in_range,
    learner_not_sandbox,
    of_type,
    pairs_clause,
)
from bot.analytics.console.questions import answer_value
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
from bot.domain import EventType
from bot.lessons.models import FreeText, Rating
from bot.store.tables import answers, enrollments, events, learners

RATINGS = range(1, 6)  # the lesson format's rating scale
FREE_TEXT_LIMIT = 500  # the newest; the CSV export has them all


def survey_questions(
    context: FigureContext, filters: Filters, kind: type[Rating] | type[FreeText]
) -> list[tuple[str, str, str, str]]:
    """(course, lesson, question, prompt) of the surveys' questions of one kind, in order."""
    found = []
    for course in courses_of(context, filters):
        for lesson_id in course.lessons:
            if course.role(lesson_id) != "survey":
                continue
            for question in course.lessons[lesson_id].questions:
                if isinstance(question, kind):
                    found.append((course.id, lesson_id, question.id, question.prompt))
    return found


async def rating_counts(
    conn: AsyncConnection,
    filters: Filters,
    scope: Scope,
    questions: Sequence[tuple[str, str, str, str]],
) -> dict[tuple[str, str, str], list[int]]:
    """(course, lesson, question) -> how many learners gave each rating, 1 to 5."""
    if not questions:
        return {}
    value = answer_value()
    query = (
        select(
            events.c.course_id,
            events.c.lesson_id,
            events.c.question_id,
            *(func.sum(case((value == str(r), 1), else_=0)).label(f"r{r}") for r in RATINGS),
        )
        .where(
            of_type(EventType.ANSWERED),
            events.c.attempt == 1,
            pairs_clause(events.c.course_id, events.c.lesson_id, [q[:2] for q in questions]),
            events.c.question_id.in_(sorted({q[2] for q in questions})),
            cohort_clause(events.c.cohort_id, filters, scope),
            event_not_sandbox(),
            *in_range(events.c.occurred_at, filters),
        )
        .group_by(events.c.course_id, events.c.lesson_id, events.c.question_id)
    )
    return {
        (str(row.course_id), str(row.lesson_id), str(row.question_id)): [
            int(getattr(row, f"r{r}") or 0) for r in RATINGS
        ]
        for row in await conn.execute(query)
    }


async def free_text_answers(
    conn: AsyncConnection,
    filters: Filters,
    scope: Scope,
    questions: Sequence[tuple[str, str, str, str]],
) -> list[list[Cell]]:
    """The newest free-text survey answers: when, cohort, lesson, question, text."""
    if not questions:
        return []
    query = (
        select(
            answers.c.answered_at,
            enrollments.c.cohort_id,
            answers.c.lesson_id,
            answers.c.question_id,
            answers.c.response,
        )
        .select_from(
            answers.join(enrollments, enrollments.c.id == answers.c.enrollment_id).join(
                learners, learners.c.id == enrollments.c.learner_id
            )
        )
        .where(
            pairs_clause(answers.c.course_id, answers.c.lesson_id, [q[:2] for q in questions]),
            answers.c.question_id.in_(sorted({q[2] for q in questions})),
            cohort_clause(enrollments.c.cohort_id, filters, scope),
            learner_not_sandbox(),
            *in_range(answers.c.answered_at, filters),
        )
        .order_by(answers.c.answered_at.desc(), answers.c.id.desc())
        .limit(FREE_TEXT_LIMIT)
    )
    asked = {(q[1], q[2]) for q in questions}
    return [
        [row.answered_at, int(row.cohort_id), row.lesson_id, row.question_id, row.response]
        for row in await conn.execute(query)
        if (row.lesson_id, row.question_id) in asked
    ]


async def survey(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> Sequence[Figure]:
    """Each rating question's distribution and mean; the free-text answers if an admin reads."""
    ratings = survey_questions(context, filters, Rating)
    counts = await rating_counts(conn, filters, scope, ratings)
    rows: list[list[Cell]] = []
    for course_id, lesson_id, question_id, prompt in ratings:
        found = counts.get((course_id, lesson_id, question_id), [0] * len(RATINGS))
        n = sum(found)
        mean = sum(r * c for r, c in zip(RATINGS, found, strict=True)) / n if n else None
        rows.append([course_id, lesson_id, question_id, prompt, n, *found, mean])
    figures = [
        figure(
            "ratings",
            N_("Survey ratings"),
            RATING_COLUMNS,
            rows,
            chart=Chart("stacked_bar", "question", tuple(f"rating_{r}" for r in RATINGS)),
            note=N_("Learners giving each rating, from 1 (lowest) to 5 (highest)."),
        )
    ]
    if scope.is_admin:
        texts = survey_questions(context, filters, FreeText)
        figures.append(
            figure(
                "free_text",
                N_("Free-text answers"),
                FREE_TEXT_COLUMNS,
                await free_text_answers(conn, filters, scope, texts),
                note=N_("The newest 500 answers, for admins only: they may name people."),
            )
        )
    return tuple(figures)


RATING_COLUMNS = (
    Column("course", N_("Course")),
    Column("lesson", N_("Lesson")),
    Column("question", N_("Question")),
    Column("prompt", N_("Prompt")),
    Column("answered", N_("Learners answering"), "count"),
    Column("rating_1", N_("Rated 1"), "count"),
    Column("rating_2", N_("Rated 2"), "count"),
    Column("rating_3", N_("Rated 3"), "count"),
    Column("rating_4", N_("Rated 4"), "count"),
    Column("rating_5", N_("Rated 5"), "count"),
    Column("mean", N_("Mean rating"), "number"),
)
FREE_TEXT_COLUMNS = (
    Column("answered_at", N_("Answered at"), "datetime"),
    Column("cohort_id", N_("Cohort id"), "count"),
    Column("lesson", N_("Lesson")),
    Column("question", N_("Question")),
    Column("text", N_("Answer")),
)
