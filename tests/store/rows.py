"""Minimal valid rows for tests that need a learner, cohort or enrollment to point at."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import ChannelName, LearnerStatus
from bot.store.db import utcnow
from bot.store.tables import cohorts, enrollments, learners


async def insert_learner(conn: AsyncConnection, **values: Any) -> dict[str, Any]:
    """Insert a learner (defaults overridable by keyword) and return its values with its id."""
    now = utcnow()
    row: dict[str, Any] = {
        "learner_key": str(uuid.uuid4()),
        "channel": ChannelName.SMS.value,
        "address": f"+2547{uuid.uuid4().int % 10**8:08d}",
        "status": LearnerStatus.ACTIVE.value,
        "created_at": now,
        "updated_at": now,
        **values,
    }
    result = await conn.execute(learners.insert().returning(learners.c.id), row)
    return {**row, "id": result.scalar_one()}


async def insert_cohort(conn: AsyncConnection, **values: Any) -> int:
    """Insert a cohort and return its id."""
    row: dict[str, Any] = {
        "name": "Cohort",
        "join_code": uuid.uuid4().hex[:8].upper(),
        "course_ids": ["digital-skills"],
        "time_zone": "Africa/Nairobi",
        "pacing": "self_paced",
        "status": "active",
        "created_at": utcnow(),
        **values,
    }
    result = await conn.execute(cohorts.insert().returning(cohorts.c.id), row)
    return int(result.scalar_one())


async def insert_enrollment(conn: AsyncConnection, learner_id: int, cohort_id: int) -> int:
    """Enrol a learner in a cohort and return the enrollment id."""
    result = await conn.execute(
        enrollments.insert().returning(enrollments.c.id),
        {
            "learner_id": learner_id,
            "cohort_id": cohort_id,
            "course_id": "digital-skills",
            "status": "active",
            "enrolled_at": utcnow(),
        },
    )
    return int(result.scalar_one())
