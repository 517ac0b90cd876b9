"""Constraints the rest of the bot relies on, enforced by the database itself."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import DeliveryKind, DeliveryStatus
from bot.store.db import utcnow
from bot.store.tables import deliveries, enrollments, learners
from tests.store.rows import insert_cohort, insert_enrollment, insert_learner


def delivery(
    enrollment_id: int, lesson_id: str, kind: DeliveryKind, *, learner_id: int
) -> dict[str, Any]:
    now = utcnow()
    return {
        "learner_id": learner_id,
        "enrollment_id": enrollment_id,
        "lesson_id": lesson_id,
        "kind": kind.value,
        "channel": "sms",
        "status": DeliveryStatus.PENDING.value,
        "due_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def test_outbox_rejects_a_second_row_for_the_same_enrollment_lesson_and_kind(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        learner = await insert_learner(conn)
        enrollment_id = await insert_enrollment(conn, learner["id"], await insert_cohort(conn))
        await conn.execute(
            deliveries.insert(),
            delivery(enrollment_id, "l1", DeliveryKind.LESSON, learner_id=learner["id"]),
        )
        # Same lesson, other kinds, and the next lesson are all distinct deliveries.
        await conn.execute(
            deliveries.insert(),
            [
                delivery(enrollment_id, "l1", DeliveryKind.REMINDER, learner_id=learner["id"]),
                delivery(enrollment_id, "l1", DeliveryKind.TEMPLATE, learner_id=learner["id"]),
                delivery(enrollment_id, "l2", DeliveryKind.LESSON, learner_id=learner["id"]),
            ],
        )

    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                deliveries.insert(),
                delivery(enrollment_id, "l1", DeliveryKind.LESSON, learner_id=learner["id"]),
            )

    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(deliveries))).scalar_one()
    assert count == 4


async def test_deleting_a_learner_row_cascades_to_enrollments_and_outbox(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        learner = await insert_learner(conn)
        enrollment_id = await insert_enrollment(conn, learner["id"], await insert_cohort(conn))
        await conn.execute(
            deliveries.insert(),
            delivery(enrollment_id, "l1", DeliveryKind.LESSON, learner_id=learner["id"]),
        )

        await conn.execute(learners.delete().where(learners.c.id == learner["id"]))

        remaining = [
            (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (enrollments, deliveries)
        ]
    assert remaining == [0, 0]


async def test_a_deleted_learner_can_keep_a_tombstone_without_an_address(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        first = await insert_learner(conn, address=None, status="deleted")
        second = await insert_learner(conn, address=None, status="deleted")

    assert first["id"] != second["id"]
