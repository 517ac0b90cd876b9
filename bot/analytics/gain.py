"""Learning gain: each learner's right answers in the post-assessment against the pre-assessment."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.tables import answers, enrollments, learners


@dataclass(frozen=True, slots=True)
class Gain:
    """One enrollment's graded items right before and after the course (None: not taken)."""

    enrollment_id: int
    learner_key: str
    pre_right: int | None
    post_right: int | None

    @property
    def gain(self) -> int | None:
        """Items right after minus before; None unless both were taken."""
        if self.pre_right is None or self.post_right is None:
            return None
        return self.post_right - self.pre_right


async def assessment_gains(
    conn: AsyncConnection, course_id: str, pre: str, post: str, *, cohort_id: int | None = None
) -> list[Gain]:
    """Per enrollment of a course (optionally one cohort's): graded items right, pre and post.

    `pre` and `post` are the lessons course.yaml marks as pre_assessment and post_assessment;
    the loader holds them to the same items, so the counts compare.
    """
    # Assessment items take one answer, so attempt 1 is the answer.
    right = func.sum(answers.c.correct.cast(Integer))
    query = (
        select(enrollments.c.id, learners.c.learner_key, answers.c.lesson_id, right)
        .select_from(
            answers.join(enrollments, enrollments.c.id == answers.c.enrollment_id).join(
                learners, learners.c.id == enrollments.c.learner_id
            )
        )
        .where(
            answers.c.course_id == course_id,
            answers.c.lesson_id.in_([pre, post]),
            answers.c.attempt == 1,
            answers.c.correct.is_not(None),
        )
        .group_by(enrollments.c.id, learners.c.learner_key, answers.c.lesson_id)
        .order_by(enrollments.c.id)
    )
    if cohort_id is not None:
        query = query.where(enrollments.c.cohort_id == cohort_id)
    found: dict[int, dict[str, object]] = {}
    for enrollment_id, learner_key, lesson_id, count in await conn.execute(query):
        entry = found.setdefault(enrollment_id, {"key": learner_key})
        entry[lesson_id] = int(count or 0)
    return [
        Gain(
            enrollment_id=enrollment_id,
            learner_key=str(entry["key"]),
            pre_right=_count(entry.get(pre)),
            post_right=_count(entry.get(post)),
        )
        for enrollment_id, entry in found.items()
    ]


def _count(value: object) -> int | None:
    return value if isinstance(value, int) else None
