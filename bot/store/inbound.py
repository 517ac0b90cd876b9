"""De-duplication of provider updates: a provider retry of an update changes nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.db import utcnow
from bot.store.fastpath import hot
from bot.store.tables import processed_inbound

# Built once per dialect (False: SQLite, True: PostgreSQL): it runs on every inbound message.
_MARK = {
    is_pg: hot(
        (postgresql.insert if is_pg else sqlite.insert)(processed_inbound).on_conflict_do_nothing(
            index_elements=["channel", "provider_id"]
        )
    )
    for is_pg in (False, True)
}


async def mark_processed(
    conn: AsyncConnection, channel: str, provider_id: str, *, received_at: datetime | None = None
) -> bool:
    """Record a provider id; True the first time, False if it was already recorded."""
    # ON CONFLICT DO NOTHING, not select-then-insert: two processes receiving the same
    # retry at once must not both see "new", and a failed INSERT would abort a PG transaction.
    statement = _MARK[conn.dialect.name == "postgresql"]
    values = {
        "channel": channel,
        "provider_id": provider_id,
        "received_at": received_at or utcnow(),
    }
    result = await conn.execute(statement, values)
    return result.rowcount == 1


async def prune_processed(conn: AsyncConnection, before: datetime) -> int:
    """Forget ids received before `before` (providers retry for hours, not weeks); the count."""
    result = await conn.execute(
        delete(processed_inbound).where(processed_inbound.c.received_at < before)
    )
    return result.rowcount
