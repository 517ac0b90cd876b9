"""Failed deliveries of a cohort: listed with their reason, requeued for active learners only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import utcnow
from bot.store.tables import deliveries
from bot.trainers.failed import cohort_failures, requeue
from bot.trainers.roles import RoleError
from tests.store.rows import insert_enrollment, insert_learner
from tests.trainers.conftest import LESSON, Staff


async def failed_delivery(engine: AsyncEngine, cohort_id: int, **learner: Any) -> int:
    """A dead lesson delivery to a new learner of the cohort; its id."""
    async with engine.begin() as conn:
        row = await insert_learner(conn, **learner)
        enrollment = await insert_enrollment(conn, row["id"], cohort_id)
        result = await conn.execute(
            deliveries.insert().returning(deliveries.c.id),
            {
                "learner_id": row["id"],
                "enrollment_id": enrollment,
                "lesson_id": LESSON,
                "kind": "lesson",
                "channel": "sms",
                "status": "dead",
                "due_at": utcnow(),
                "attempts": 5,
                "error_code": "30003",
                "error_detail": "Unreachable destination handset",
                "created_at": utcnow(),
                "updated_at": utcnow(),
            },
        )
        return int(result.scalar_one())


async def statuses(engine: AsyncEngine) -> dict[int, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(deliveries.c.id, deliveries.c.status))
        return {int(i): str(status) for i, status in rows}


async def test_requeue_touches_only_the_cohorts_deliveries_to_active_learners(
    engine: AsyncEngine, staff: Staff
) -> None:
    mine = await failed_delivery(engine, staff.toms_cohort.id)
    stopped = await failed_delivery(engine, staff.toms_cohort.id, status="stopped")
    theirs = await failed_delivery(engine, staff.unas_cohort.id)
    async with engine.begin() as conn:
        found, total = await cohort_failures(conn, staff.tom, staff.toms_cohort)
        assert total == 2 and {f.id for f in found} == {mine, stopped}
        assert {f.id: f.requeueable for f in found} == {mine: True, stopped: False}
        assert found[0].error_code == "30003"
        assert await requeue(conn, staff.tom, staff.toms_cohort, None) == 1
    assert await statuses(engine) == {mine: "pending", stopped: "dead", theirs: "dead"}


async def test_requeue_of_one_delivery_and_of_another_trainers_cohort(
    engine: AsyncEngine, staff: Staff
) -> None:
    first = await failed_delivery(engine, staff.toms_cohort.id)
    second = await failed_delivery(engine, staff.toms_cohort.id)
    async with engine.begin() as conn:
        assert await requeue(conn, staff.tom, staff.toms_cohort, [second]) == 1
        with pytest.raises(RoleError):
            await requeue(conn, staff.una, staff.toms_cohort, None)
        with pytest.raises(RoleError):
            await cohort_failures(conn, staff.una, staff.toms_cohort)
    assert await statuses(engine) == {first: "dead", second: "pending"}
