"""Learning gain: pre- against post-assessment, paired by learner, as `bot.analytics.gain` pairs.

`bot.analytics.gain.assessment_gains` lists each enrollment's right answers for the CLI; the
console needs only their means and spreads, so here SQL sums them per learner and over
learners (count, sum, sum of squares) and Python turns the sums into a mean with a 95%
t interval. A learner is paired when they answered both assessments (their first attempts);
an item left unanswered counts as wrong. Normalised gain is Hake's <g> of the paired class
means: (post - pre) / (1 - pre), the share of what was left to learn that was learnt.
The confidence lift is the change in the assessments' shared rating item (e.g. "How confident
are you...", 1 to 5), paired the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Subquery, case, cast, func, null, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.common import (
    cohort_clause,
    courses_of,
    event_not_sandbox,
    in_range,
    of_type,
)
from bot.analytics.console.questions import answer_value
from bot.analytics.console.stats import MeanInterval, mean_interval, share
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
from bot.lessons.loader import LoadedCourse
from bot.lessons.models import MultipleSelect, Rating, SingleChoice, TrueFalse
from bot.store.tables import events


@dataclass(frozen=True, slots=True)
class Assessments:
    """A course's pre and post assessments: lesson ids, graded items, the shared rating item."""

    course_id: str
    pre: str
    post: str
    items: int
    confidence: str | None


def assessments_of(course: LoadedCourse) -> Assessments | None:
    """The course's assessments, or None when it has no pre and post assessment."""
    pre, post = course.course.pre_assessment, course.course.post_assessment
    if pre is None or post is None or pre not in course.lessons or post not in course.lessons:
        return None
    graded = SingleChoice | TrueFalse | MultipleSelect
    items = sum(isinstance(q, graded) for q in course.lessons[pre].questions)
    post_ratings = {q.id for q in course.lessons[post].questions if isinstance(q, Rating)}
    confidence = next(
        (
            q.id
            for q in course.lessons[pre].questions
            if isinstance(q, Rating) and q.id in post_ratings
        ),
        None,
    )
    return Assessments(course.id, pre, post, items, confidence)


def paired_scores(assessment: Assessments, filters: Filters, scope: Scope) -> Subquery:
    """Per learner and cohort who took the post-assessment: right answers and rating, both times.

    Only learners who reached the post-assessment can be paired, and they are few: their
    post answers are grouped first, then each one's pre answers looked up (None: not taken).
    """
    right = events.c.correct.cast(Integer)
    graded = events.c.correct.is_not(None)
    answered = [
        of_type(EventType.ANSWERED),
        events.c.attempt == 1,
        events.c.course_id == assessment.course_id,
        cohort_clause(events.c.cohort_id, filters, scope),
        event_not_sandbox(),
        *in_range(events.c.occurred_at, filters),
    ]

    def rating() -> Any:
        if assessment.confidence is None:
            return cast(null(), Integer)  # no rating item: never rated
        is_rating = events.c.question_id == assessment.confidence
        return func.max(case((is_rating, answer_value().cast(Integer))))

    post = (
        select(
            events.c.learner_key,
            events.c.cohort_id,
            func.sum(case((graded, right))).label("post_right"),
            rating().label("post_rating"),
        )
        .where(*answered, events.c.lesson_id == assessment.post)
        .group_by(events.c.learner_key, events.c.cohort_id)
        .subquery("post")
    )

    def pre(value: Any) -> Any:
        return (
            select(value)
            .where(
                *answered,
                events.c.lesson_id == assessment.pre,
                events.c.learner_key == post.c.learner_key,
                events.c.cohort_id == post.c.cohort_id,
            )
            .correlate(post)
            .scalar_subquery()
        )

    return select(
        post.c.learner_key,
        post.c.cohort_id,
        pre(func.sum(case((graded, right)))).label("pre_right"),
        post.c.post_right,
        pre(rating()).label("pre_rating"),
        post.c.post_rating,
    ).subquery("paired")


def gain_sums(paired: Subquery) -> list[Any]:
    """The sums over learners that `gain_row` and `lift_row` need (labelled columns)."""
    both = paired.c.pre_right.is_not(None) & paired.c.post_right.is_not(None)
    gain = paired.c.post_right - paired.c.pre_right
    rated = paired.c.pre_rating.is_not(None) & paired.c.post_rating.is_not(None)
    lift = paired.c.post_rating - paired.c.pre_rating
    return [
        func.sum(case((both, 1), else_=0)).label("paired"),
        func.sum(case((both, paired.c.pre_right))).label("pre_sum"),
        func.sum(case((both, paired.c.post_right))).label("post_sum"),
        func.sum(case((both, gain))).label("gain_sum"),
        func.sum(case((both, gain * gain))).label("gain_squares"),
        func.sum(case((rated, 1), else_=0)).label("rated"),
        func.sum(case((rated, paired.c.pre_rating))).label("pre_rating_sum"),
        func.sum(case((rated, paired.c.post_rating))).label("post_rating_sum"),
        func.sum(case((rated, lift))).label("lift_sum"),
        func.sum(case((rated, lift * lift))).label("lift_squares"),
    ]


@dataclass(frozen=True, slots=True)
class GainFigures:
    """What one set of sums says: score gain, normalised gain, confidence lift."""

    gain: MeanInterval
    pre: float | None  # mean share right before
    post: float | None
    normalised: float | None
    lift: MeanInterval
    pre_rating: float | None
    post_rating: float | None


def gain_figures(row: Any, items: int) -> GainFigures:
    """Means and 95% intervals from the sums of `gain_sums`."""
    paired, rated = int(row.paired or 0), int(row.rated or 0)
    gain = mean_interval(paired, float(row.gain_sum or 0), float(row.gain_squares or 0))
    pre = share(float(row.pre_sum or 0), paired * items) if paired else None
    post = share(float(row.post_sum or 0), paired * items) if paired else None
    normalised = None
    if pre is not None and post is not None and pre < 1:
        normalised = (post - pre) / (1 - pre)
    lift = mean_interval(rated, float(row.lift_sum or 0), float(row.lift_squares or 0))
    return GainFigures(
        gain=gain,
        pre=pre,
        post=post,
        normalised=normalised,
        lift=lift,
        pre_rating=share(float(row.pre_rating_sum or 0), rated),
        post_rating=share(float(row.post_rating_sum or 0), rated),
    )


async def gain(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> Sequence[Figure]:
    """Per course with both assessments: mean gain with its 95% CI, <g>, and confidence lift."""
    scores: list[list[Cell]] = []
    confidence: list[list[Cell]] = []
    for course in courses_of(context, filters):
        assessment = assessments_of(course)
        if assessment is None:
            continue
        row = (
            await conn.execute(select(*gain_sums(paired_scores(assessment, filters, scope))))
        ).one()
        found = gain_figures(row, assessment.items)
        scores.append(
            [
                course.id,
                found.gain.n,
                assessment.items,
                found.pre,
                found.post,
                found.gain.mean,
                found.gain.low,
                found.gain.high,
                found.normalised,
            ]
        )
        if assessment.confidence is not None:
            confidence.append(
                [
                    course.id,
                    found.lift.n,
                    found.pre_rating,
                    found.post_rating,
                    found.lift.mean,
                    found.lift.low,
                    found.lift.high,
                ]
            )
    return (
        figure(
            "gain",
            N_("Learning gain"),
            GAIN_COLUMNS,
            scores,
            chart=Chart("bar", "course", ("pre", "post")),
            note=N_(
                "Learners who took both assessments. Gain: items right after minus before, "
                "with its confidence interval at 95% (t distribution). Normalised gain: "
                "(after - before) / (1 - before), Hake's <g>."
            ),
        ),
        figure(
            "confidence",
            N_("Confidence lift"),
            CONFIDENCE_COLUMNS,
            confidence,
            chart=Chart("bar", "course", ("pre_rating", "post_rating")),
            note=N_(
                "The assessments' confidence rating (1 to 5) after minus before, for learners "
                "who gave it both times, with its confidence interval at 95%."
            ),
        ),
    )


GAIN_COLUMNS = (
    Column("course", N_("Course")),
    Column("paired", N_("Learners paired"), "count"),
    Column("items", N_("Items"), "count"),
    Column("pre", N_("Right before"), "share"),
    Column("post", N_("Right after"), "share"),
    Column("mean_gain", N_("Mean gain (items)"), "number"),
    Column("ci_low", N_("95% CI low"), "number"),
    Column("ci_high", N_("95% CI high"), "number"),
    Column("normalised_gain", N_("Normalised gain"), "number"),
)
CONFIDENCE_COLUMNS = (
    Column("course", N_("Course")),
    Column("rated", N_("Learners paired"), "count"),
    Column("pre_rating", N_("Confidence before"), "number"),
    Column("post_rating", N_("Confidence after"), "number"),
    Column("lift", N_("Confidence lift"), "number"),
    Column("ci_low", N_("95% CI low"), "number"),
    Column("ci_high", N_("95% CI high"), "number"),
)
