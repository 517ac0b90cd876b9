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


async def test_a_status_callback_finds_its_delivery_from_an_index_of_sent_rows_only(
    engine: AsyncEngine,
) -> None:
    # A planned row has no provider id yet: the index leaves it out (planning writes one
    # index entry fewer per delivery), and the callback's lookup by id still reads it.
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            definition = (
                await conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'ix_deliveries_provider_message_id'"
                )
            ).scalar_one()
            plan = " ".join(
                str(row[-1])
                for row in await conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT id FROM deliveries WHERE provider_message_id = ?",
                    ("SM1",),
                )
            )
        else:
            definition = (
                await conn.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes "
                    "WHERE indexname = 'ix_deliveries_provider_message_id'"
                )
            ).scalar_one()
            # An empty table is read whole unless sequential scans are ruled out; the plan is
            # the generic one a prepared statement (asyncpg's) settles on, the id a parameter.
            await conn.exec_driver_sql("SET enable_seqscan = off")
            await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            await conn.exec_driver_sql(
                "PREPARE by_provider_id(text) AS "
                "SELECT id FROM deliveries WHERE provider_message_id = $1"
            )
            plan = " ".join(
                str(row[0])
                for row in await conn.exec_driver_sql("EXPLAIN EXECUTE by_provider_id('SM1')")
            )
    assert "provider_message_id IS NOT NULL" in definition.replace("(", "").replace(")", "")
    assert "ix_deliveries_provider_message_id" in plan
