"""A cohort's failed deliveries, and sending them again (the console's requeue button).

The listing sits beside its write: it is what the trainer chooses from, not a figure.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import DeliveryStatus, LearnerStatus
from bot.store.tables import deliveries, enrollments, learners

FAILED = (
    DeliveryStatus.FAILED.value,
    DeliveryStatus.DEAD.value,
    DeliveryStatus.UNDELIVERED.value,
)


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """One delivery that did not reach its learner, and why."""

    id: int
    learner_key: str  # shown as a keyed pseudonym, never the address
    learner_status: str
    channel: str
    lesson_id: str
    status: str
    attempts: int
    error_code: str | None
    error_detail: str | None
    updated_at: datetime

    @property
    def requeueable(self) -> bool:
        """Only a learner we may still send to gets it again (never after a STOP)."""
        return self.learner_status == LearnerStatus.ACTIVE.value


def _of_cohort(cohort_id: int) -> ColumnElement[bool]:
    return deliveries.c.enrollment_id.in_(
        select(enrollments.c.id).where(enrollments.c.cohort_id == cohort_id)
    )


async def failed_deliveries(
    conn: AsyncConnection, cohort_id: int, *, limit: int = 200
) -> tuple[list[FailedDelivery], int]:
    """The cohort's latest failed deliveries (at most `limit`) and how many there are in all."""
    where = (deliveries.c.status.in_(FAILED), _of_cohort(cohort_id))
    total = int(await conn.scalar(select(func.count()).select_from(deliveries).where(*where)) or 0)
    rows = await conn.execute(
        select(
            deliveries.c.id,
            deliveries.c.channel,
            deliveries.c.lesson_id,
            deliveries.c.status,
            deliveries.c.attempts,
            deliveries.c.error_code,
            deliveries.c.error_detail,
            deliveries.c.updated_at,
            learners.c.learner_key,
            learners.c.status.label("learner_status"),
        )
        .select_from(deliveries.join(learners, learners.c.id == deliveries.c.learner_id))
        .where(*where)
        .order_by(deliveries.c.updated_at.desc(), deliveries.c.id.desc())
        .limit(limit)
    )
    found = [
        FailedDelivery(
            id=int(row.id),
            learner_key=str(row.learner_key),
            learner_status=str(row.learner_status),
            channel=str(row.channel),
            lesson_id=str(row.lesson_id),
            status=str(row.status),
            attempts=int(row.attempts),
            error_code=row.error_code,
            error_detail=row.error_detail,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return found, total


async def requeue_failed(
    conn: AsyncConnection, cohort_id: int, ids: Collection[int] | None, now: datetime
) -> int:
    """Make failed deliveries of the cohort (these ids, or all) pending again; how many.

    Learners who stopped, were paused or are unreachable are left out: a requeue must not
    write to someone who said STOP.
    """
    statement = (
        deliveries.update()
        .where(
            deliveries.c.status.in_(FAILED),
            _of_cohort(cohort_id),
            deliveries.c.learner_id.in_(
                select(learners.c.id).where(learners.c.status == LearnerStatus.ACTIVE.value)
            ),
        )
        .values(
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=None,
            due_at=now,
            claimed_by=None,
            claimed_until=None,
            updated_at=now,
        )
    )
    if ids is not None:
        statement = statement.where(deliveries.c.id.in_(sorted(ids)))
    return int((await conn.execute(statement)).rowcount)
