"""ChannelLimiter: even global slots, per-address spacing, pauses, bounded memory, fairness."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from bot.config import Settings
from bot.domain import ChannelName
from scheduler.ratelimit import ChannelLimiter, limiter_for


class VirtualClock:
    """Virtual time for concurrent tasks: it jumps to the next sleeper once all are blocked."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def run(self, *aws: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(aw) for aw in aws]
        while not all(task.done() for task in tasks):
            for _ in range(20):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if all(task.done() for task in tasks):
                break
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            future.set_result(None)
        return [task.result() for task in tasks]


def limiter(
    clock: VirtualClock, rate: float | None, per_address: float | None = None
) -> ChannelLimiter:
    return ChannelLimiter(rate, per_address_rate=per_address, clock=clock, sleep=clock.sleep)


async def send_times(
    clock: VirtualClock, lim: ChannelLimiter, *sends: tuple[str, float]
) -> list[float]:
    """Acquire for each (address, cost) concurrently; the virtual time each got its slot."""
    times: dict[int, float] = {}

    async def one(index: int, address: str, cost: float) -> None:
        await lim.acquire(address, cost)
        times[index] = clock.now

    await clock.run(*(one(i, a, c) for i, (a, c) in enumerate(sends)))
    return [times[i] for i in range(len(sends))]


async def test_global_slots_are_evenly_spaced_in_request_order() -> None:
    clock = VirtualClock()
    lim = limiter(clock, 10.0)
    times = await send_times(clock, lim, *((f"chat{n}", 1.0) for n in range(5)))
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


async def test_cost_counts_against_the_rate() -> None:
    # SMS: 1 segment per second; a 3-segment message uses three seconds of budget.
    clock = VirtualClock()
    lim = limiter(clock, 1.0)
    assert await send_times(clock, lim, ("+1555", 3.0), ("+1666", 1.0)) == pytest.approx([0, 3])


async def test_a_busy_address_waits_without_holding_up_the_others() -> None:
    clock = VirtualClock()
    lim = limiter(clock, 10.0, per_address=1.0)
    sends = [("a", 1.0), ("a", 1.0), ("a", 1.0), ("b", 1.0), ("c", 1.0)]
    times = await send_times(clock, lim, *sends)
    assert times[:3] == pytest.approx([0.0, 1.0, 2.0])  # one per second for "a"
    assert times[3:] == pytest.approx([0.1, 0.2])  # b and c take the next global slots


async def test_per_address_interval_counts_from_the_actual_send() -> None:
    # The global queue delays "a"'s first send to 0.5 s: its second may not follow before 1.5 s.
    clock = VirtualClock()
    lim = limiter(clock, 2.0, per_address=1.0)
    times = await send_times(clock, lim, ("x", 1.0), ("a", 1.0), ("a", 1.0))
    assert times == pytest.approx([0.0, 0.5, 1.5])


async def test_pause_stops_everyone_until_it_ends() -> None:
    clock = VirtualClock()
    lim = limiter(clock, 10.0, per_address=1.0)
    await send_times(clock, lim, ("a", 1.0))
    lim.pause(5.0)
    times = await send_times(clock, lim, ("b", 1.0), ("c", 1.0))
    assert times == pytest.approx([5.0, 5.1])


async def test_a_pause_during_a_wait_moves_the_waiter_after_it() -> None:
    clock = VirtualClock()
    lim = limiter(clock, 1.0)

    async def pause_soon() -> None:
        await clock.sleep(0.5)
        lim.pause(10.0)

    times: list[float] = []

    async def send(address: str) -> None:
        await lim.acquire(address)
        times.append(clock.now)

    await clock.run(send("a"), send("b"), pause_soon())
    assert times == pytest.approx([0.0, 10.5])  # b's slot at 1.0 fell inside the pause


async def test_the_window_holds_back_sends_that_a_stall_would_bunch() -> None:
    # Slots 1 ms apart, but at most 3 sends in any second by the time they really go.
    clock = VirtualClock()
    lim = ChannelLimiter(1000.0, window=(3, 1.0), clock=clock, sleep=clock.sleep)
    times = await send_times(clock, lim, *((f"chat{n}", 1.0) for n in range(5)))
    assert times == pytest.approx([0.0, 0.001, 0.002, 1.0, 1.001])


async def test_unlimited_channels_never_wait() -> None:
    clock = VirtualClock()
    lim = limiter(clock, None)
    assert await send_times(clock, lim, *(("s", 1.0),) * 100) == [0.0] * 100


async def test_per_address_memory_stays_bounded() -> None:
    clock = VirtualClock()
    lim = limiter(clock, 1000.0, per_address=1.0)
    peak = 0
    for batch in range(50):  # 5000 chats, 100 waiting at a time, at 1000/s: 5 s
        await send_times(clock, lim, *((f"chat{batch}-{n}", 1.0) for n in range(100)))
        peak = max(peak, lim.tracked_addresses)
    # Only chats sent to within the last second (plus those waiting) are remembered.
    assert peak <= 1000 + 100 + 1  # a second of sends, the waiters, the window edge
    clock.now += 2.0
    await send_times(clock, lim, ("late", 1.0))
    assert lim.tracked_addresses == 1


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="per_address_rate"):
        ChannelLimiter(1.0, per_address_rate=0)
    with pytest.raises(ValueError, match="rate"):
        ChannelLimiter(-1.0)


def test_limits_per_channel() -> None:
    settings = Settings(twilio_sms_mps=3.0, twilio_whatsapp_mps=80.0)
    telegram = limiter_for(ChannelName.TELEGRAM, settings)
    assert telegram.rate is not None and 28.5 <= telegram.rate <= 30.0
    assert telegram.per_address_rate is not None and telegram.per_address_rate <= 1.0
    sms = limiter_for(ChannelName.SMS, settings)
    assert (sms.rate, sms.per_address_rate) == (3.0, None)
    assert limiter_for(ChannelName.WHATSAPP, settings).rate == 80.0
    assert limiter_for(ChannelName.SANDBOX, settings).rate is None


@pytest.mark.slow
async def test_real_clock_runs_near_the_limit_and_never_over_it() -> None:
    # 40 concurrent senders, 200 sends to 20 addresses at 100/s overall and 5/s per address.
    lim = ChannelLimiter(100.0, per_address_rate=5.0)
    sent: list[tuple[float, str]] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for n in range(200):
        queue.put_nowait(f"chat{n % 20}")

    async def worker() -> None:
        while not queue.empty():
            address = queue.get_nowait()
            await lim.acquire(address)
            sent.append((time.monotonic(), address))

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(40)))
    elapsed = time.monotonic() - start
    assert elapsed + 0.005 >= 199 / 100 and 199 / elapsed / 100 >= 0.95
    times = sorted(t for t, _ in sent)
    # No window of one second holds more than the rate (+1 for the window's closed edge).
    assert (
        max(sum(1 for t in times[i:] if t - start_t < 1.0) for i, start_t in enumerate(times))
        <= 101
    )
    for address in {a for _, a in sent}:
        mine = sorted(t for t, a in sent if a == address)
        assert min(b - a for a, b in itertools.pairwise(mine)) >= 0.2 - 0.002
