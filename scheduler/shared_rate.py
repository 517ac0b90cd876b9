"""A channel's global send schedule shared by every dispatcher process on one PostgreSQL.

Each process keeps its own `ChannelLimiter` (per-chat spacing, pauses, the window over
actual send times) but takes its global slots from the database: senders waiting in this
process are granted together, one statement per block (`bot.store.rate_limits.reserve`),
and each gets its slot in the block, `cost / rate` apart. A process reserves only for
senders that are waiting, and never more than `ahead` seconds beyond its last slot, so slots
a process cannot use (it stopped, or has less work) are few and the processes share the
rate by demand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import rate_limits

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
BLOCK_SECONDS = 0.2  # one reservation holds at most this much of the channel's sending
AHEAD_SECONDS = 0.25  # how far beyond its last slot a process may reserve


class SharedSchedule:
    """Global send slots of one channel, reserved in blocks from a `rate_limits` row."""

    def __init__(
        self,
        engine: AsyncEngine,
        name: str,
        rate: float,
        *,
        block_seconds: float = BLOCK_SECONDS,
        ahead_seconds: float = AHEAD_SECONDS,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.engine = engine
        self.name = name
        self.rate = rate
        self.block_seconds = block_seconds
        self.ahead_seconds = ahead_seconds
        self._clock = clock
        self._sleep = sleep
        self._waiting: deque[tuple[float, asyncio.Future[float]]] = deque()
        self._granting: asyncio.Task[None] | None = None
        self._reserved_until = 0.0  # local time at which this process's last slot ends
        self._tasks: set[asyncio.Task[None]] = set()

    async def slot(self, cost: float) -> float:
        """A global slot of `cost` units: the local monotonic time at which it starts."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting.append((cost, future))
        if self._granting is None or self._granting.done():
            self._granting = asyncio.create_task(self._grant())
        return await future

    def hold_off(self, seconds: float) -> None:
        """A provider said "retry after `seconds`": every process's slots start after it."""
        task = asyncio.get_running_loop().create_task(self._hold_off(seconds))
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def _hold_off(self, seconds: float) -> None:
        try:
            async with self.engine.begin() as conn:
                await rate_limits.hold_off(conn, self.name, seconds)
        except Exception:
            log.exception("sharing the pause of %s failed", self.name)

    async def _grant(self) -> None:
        while self._waiting:
            early = self._reserved_until - self.ahead_seconds - self._clock()
            if early > 0:
                await self._sleep(early)
            block: list[tuple[float, asyncio.Future[float]]] = []
            units = 0.0
            limit = max(self.rate * self.block_seconds, 1.0)
            while self._waiting and (not block or units + self._waiting[0][0] <= limit):
                cost, future = self._waiting.popleft()
                if future.cancelled():
                    continue
                block.append((cost, future))
                units += cost
            if not block:
                continue
            asked = self._clock()
            try:
                async with self.engine.begin() as conn:
                    starts_in = await rate_limits.reserve(conn, self.name, units / self.rate)
            except Exception as error:
                for _, future in block:
                    if not future.done():
                        future.set_exception(error)
                continue
            # The database read its clock between our request and its answer: take the middle.
            start = (asked + self._clock()) / 2 + starts_in
            for cost, future in block:
                if not future.done():
                    future.set_result(start)
                start += cost / self.rate
            self._reserved_until = start
