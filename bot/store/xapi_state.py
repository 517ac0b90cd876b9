"""The xAPI forwarder's writes: its lease, its cursor, its last error, parked statements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.tables import xapi_cursor, xapi_parked

MAX_REASON = 2000  # an LRS's error body can be long; the start says what was wrong


@dataclass(frozen=True, slots=True)
class Parked:
    """A statement the LRS refused, to keep with its reason."""

    event_id: int
    statement_id: str
    status_code: int
    reason: str


async def ensure_cursor(conn: AsyncConnection, name: str) -> None:
    """Create the cursor row at the start of the log, once (safe to race)."""
    if await conn.scalar(select(xapi_cursor.c.name).where(xapi_cursor.c.name == name)):
        return
    try:
        async with conn.begin_nested():
            await conn.execute(insert(xapi_cursor).values(name=name, last_event_id=0))
    except IntegrityError:
        pass  # another process created it first


async def take_lease(
    conn: AsyncConnection,
    name: str,
    holder: str,
    now: datetime,
    ttl: timedelta,
    *,
    steal_from: str | None = None,
) -> int | None:
    """Hold (or renew) the right to forward until now + ttl; the cursor if we hold it.

    Taken when free, ours, expired, or held by `steal_from` (a process known to be dead).
    """
    free = or_(
        xapi_cursor.c.holder.is_(None),
        xapi_cursor.c.holder == holder,
        xapi_cursor.c.lease_until < now,
    )
    if steal_from is not None:
        free = or_(free, xapi_cursor.c.holder == steal_from)
    taken = await conn.execute(
        update(xapi_cursor)
        .where(xapi_cursor.c.name == name, free)
        .values(holder=holder, lease_until=now + ttl)
        .returning(xapi_cursor.c.last_event_id)
    )
    row = taken.first()
    return None if row is None else int(row[0])


async def cursor_of(conn: AsyncConnection, name: str, holder: str) -> int | None:
    """The cursor, if `holder` still holds the lease (a read: no write)."""
    value = await conn.scalar(
        select(xapi_cursor.c.last_event_id).where(
            xapi_cursor.c.name == name, xapi_cursor.c.holder == holder
        )
    )
    return None if value is None else int(value)


async def current_holder(conn: AsyncConnection, name: str) -> str | None:
    """Who holds the lease now, if anyone."""
    holder = await conn.scalar(select(xapi_cursor.c.holder).where(xapi_cursor.c.name == name))
    return None if holder is None else str(holder)


async def advance(
    conn: AsyncConnection,
    name: str,
    holder: str,
    moves: tuple[int, int],
    now: datetime,
    *,
    lease_until: datetime | None = None,
) -> bool:
    """Move the cursor (from, to) past a batch the LRS holds, renewing the lease to `lease_until`.

    False if our lease was taken, or the cursor moved (a backfill), meanwhile: the cursor
    stays where the other process or the backfill put it.
    """
    before, last_event_id = moves
    moved = await conn.execute(
        update(xapi_cursor)
        .where(
            xapi_cursor.c.name == name,
            xapi_cursor.c.holder == holder,
            xapi_cursor.c.last_event_id == before,
        )
        .values(
            last_event_id=last_event_id,
            last_sent_at=now,
            last_error=None,
            **({} if lease_until is None else {"lease_until": lease_until}),
        )
    )
    return bool(moved.rowcount)


async def record_error(conn: AsyncConnection, name: str, error: str, now: datetime) -> None:
    """Keep the last error, for `learnbot xapi status`."""
    await conn.execute(
        update(xapi_cursor)
        .where(xapi_cursor.c.name == name)
        .values(last_error=error[:MAX_REASON], last_error_at=now)
    )


async def release(conn: AsyncConnection, name: str, holder: str) -> None:
    """Give the lease up at a clean shutdown, so another process takes over at once."""
    await conn.execute(
        update(xapi_cursor)
        .where(xapi_cursor.c.name == name, xapi_cursor.c.holder == holder)
        .values(holder=None, lease_until=None)
    )


async def park(conn: AsyncConnection, refused: Sequence[Parked], now: datetime) -> None:
    """Keep statements the LRS refused; a statement parked twice keeps its first reason."""
    for item in refused:
        exists = await conn.scalar(
            select(xapi_parked.c.event_id).where(xapi_parked.c.event_id == item.event_id)
        )
        if exists is None:
            await conn.execute(
                insert(xapi_parked).values(
                    event_id=item.event_id,
                    statement_id=item.statement_id,
                    status_code=item.status_code,
                    reason=item.reason[:MAX_REASON],
                    parked_at=now,
                )
            )


async def rewind(conn: AsyncConnection, name: str, after_event_id: int) -> int:
    """Send again from the event after `after_event_id` (a backfill); the old cursor.

    Parked statements in that range are tried again. The LRS keeps one statement per id, so
    what it already holds is not stored twice.
    """
    old = await conn.scalar(select(xapi_cursor.c.last_event_id).where(xapi_cursor.c.name == name))
    await conn.execute(
        update(xapi_cursor).where(xapi_cursor.c.name == name).values(last_event_id=after_event_id)
    )
    await conn.execute(delete(xapi_parked).where(and_(xapi_parked.c.event_id > after_event_id)))
    return int(old or 0)
