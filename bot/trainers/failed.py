"""Failed deliveries of a cohort, as a trainer sees them, and requeueing them."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.db import utcnow
from bot.store.failed_deliveries import FailedDelivery, failed_deliveries, requeue_failed
from bot.trainers.cohorts import CohortInfo
from bot.trainers.roles import UserRecord, check_cohort_access


async def cohort_failures(
    conn: AsyncConnection, user: UserRecord, cohort: CohortInfo, *, limit: int = 200
) -> tuple[list[FailedDelivery], int]:
    """The cohort's latest failed deliveries and their total; RoleError if not `user`'s."""
    check_cohort_access(user, cohort_name=cohort.name, owner_id=cohort.owner_id)
    return await failed_deliveries(conn, cohort.id, limit=limit)


async def requeue(
    conn: AsyncConnection, user: UserRecord, cohort: CohortInfo, ids: Collection[int] | None
) -> int:
    """Send the cohort's failed deliveries (these ids, or all) again; RoleError if not theirs."""
    check_cohort_access(user, cohort_name=cohort.name, owner_id=cohort.owner_id)
    return await requeue_failed(conn, cohort.id, ids, utcnow())
