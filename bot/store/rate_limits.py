"""Shared send schedules: a channel's rate limit held across processes on PostgreSQL.

Each schedule is one row holding the next free send slot, on the database's own clock (so
the processes' clocks need not agree). A process reserves a block of slots in one statement
(GCRA without burst: slots `cost / rate` apart, never earlier than now), and a provider's
retry-after moves the schedule on for everyone.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_RESERVE = text(
    """
    INSERT INTO rate_limits (name, next_free)
    VALUES (:name, clock_timestamp() + make_interval(secs => CAST(:seconds AS DOUBLE PRECISION)))
    ON CONFLICT (name) DO UPDATE
    SET next_free = greatest(rate_limits.next_free, clock_timestamp())
        + make_interval(secs => CAST(:seconds AS DOUBLE PRECISION))
    RETURNING CAST(EXTRACT(EPOCH FROM (next_free - clock_timestamp())) AS DOUBLE PRECISION)
    """
)
_HOLD_OFF = text(
    """
    INSERT INTO rate_limits (name, next_free)
    VALUES (:name, clock_timestamp() + make_interval(secs => CAST(:seconds AS DOUBLE PRECISION)))
    ON CONFLICT (name) DO UPDATE
    SET next_free = greatest(rate_limits.next_free, EXCLUDED.next_free)
    """
)


async def reserve(conn: AsyncConnection, name: str, seconds: float) -> float:
    """Reserve the next `seconds` of schedule `name`: seconds from now until they start."""
    ends_in = (await conn.execute(_RESERVE, {"name": name, "seconds": seconds})).scalar_one()
    return float(ends_in) - seconds


async def hold_off(conn: AsyncConnection, name: str, seconds: float) -> None:
    """Nobody's next slot of schedule `name` starts sooner than `seconds` from now."""
    await conn.execute(_HOLD_OFF, {"name": name, "seconds": seconds})
