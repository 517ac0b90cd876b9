"""Outbox rows nobody will claim: pending on a channel this process does not send on."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import DeliveryStatus
from bot.store.tables import deliveries


async def pending_outside(conn: AsyncConnection, channels: Collection[str]) -> dict[str, int]:
    """Pending deliveries by channel, for the channels not in `channels`."""
    rows = await conn.execute(
        select(deliveries.c.channel, func.count())
        .where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.channel.not_in(sorted(channels)),
        )
        .group_by(deliveries.c.channel)
    )
    return {str(channel): int(n) for channel, n in rows}
