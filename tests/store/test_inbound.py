"""Provider de-duplication: the first delivery of an update id counts, retries do not."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.inbound import mark_processed, prune_processed
from bot.store.tables import processed_inbound


async def test_an_id_is_new_once_per_channel(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await mark_processed(conn, "telegram", "1001")
        retry = await mark_processed(conn, "telegram", "1001")
        other_update = await mark_processed(conn, "telegram", "1002")
        other_channel = await mark_processed(conn, "sms", "1001")

    assert (first, retry, other_update, other_channel) == (True, False, True, True)


async def test_a_retry_in_a_later_transaction_is_still_a_duplicate(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert await mark_processed(conn, "whatsapp", "SM123")
    async with engine.begin() as conn:
        assert not await mark_processed(conn, "whatsapp", "SM123")
        # The transaction is still usable after the ignored insert (it would not be on
        # PostgreSQL after a failed plain INSERT).
        assert await mark_processed(conn, "whatsapp", "SM124")


async def test_prune_forgets_only_old_ids(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        old = datetime(2024, 1, 1, tzinfo=UTC)
        await mark_processed(conn, "sms", "old", received_at=old)
        await mark_processed(conn, "sms", "new", received_at=datetime(2024, 3, 1, tzinfo=UTC))

        pruned = await prune_processed(conn, datetime(2024, 2, 1, tzinfo=UTC))
        kept = (await conn.execute(select(processed_inbound.c.provider_id))).scalars().all()

    assert pruned == 1
    assert kept == ["new"]
