"""A cohort's latest pushes, so a trainer can find one again and follow or cancel it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.tables import pushes
from bot.trainers.cohorts import CohortInfo
from bot.trainers.roles import UserRecord, check_cohort_access


@dataclass(frozen=True, slots=True)
class PushSummary:
    """One push as listed: what, when, how many, and where it stands."""

    id: int
    lesson_id: str
    send_at: datetime
    status: str
    total: int


async def recent_pushes(
    conn: AsyncConnection, user: UserRecord, cohort: CohortInfo, *, limit: int = 10
) -> list[PushSummary]:
    """The cohort's latest pushes, newest first; RoleError if `user` may not act on it."""
    check_cohort_access(user, cohort_name=cohort.name, owner_id=cohort.owner_id)
    rows = await conn.execute(
        select(pushes.c.id, pushes.c.lesson_id, pushes.c.send_at, pushes.c.status, pushes.c.total)
        .where(pushes.c.cohort_id == cohort.id)
        .order_by(pushes.c.id.desc())
        .limit(limit)
    )
    return [
        PushSummary(int(row.id), str(row.lesson_id), row.send_at, str(row.status), int(row.total))
        for row in rows
    ]
