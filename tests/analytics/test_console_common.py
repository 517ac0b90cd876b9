"""What the console's figures share: reads run side by side."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.analytics.console.common import side_by_side


async def test_reads_side_by_side_run_at_once_each_on_its_own_connection(
    engine: AsyncEngine,
) -> None:
    together = asyncio.Barrier(3)  # passed only if all three reads are running at once
    connections: list[AsyncConnection] = []

    def read(n: int) -> Callable[[AsyncConnection], Awaitable[int]]:
        async def run(conn: AsyncConnection) -> int:
            connections.append(conn)
            await together.wait()
            return int(await conn.scalar(select(n)) or 0)

        return run

    async with engine.connect() as conn:
        found = await asyncio.wait_for(side_by_side(conn, read(1), read(2), read(3)), 10)
    assert found == [1, 2, 3]
    assert connections[0] is conn
    assert len({id(used) for used in connections}) == 3
