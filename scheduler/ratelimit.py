"""Per-channel send rate limits: a global rate and an optional per-address rate.

Each limit is a virtual schedule (GCRA without burst): a send takes the next free slot, and
slots are `cost / rate` seconds apart on the monotonic clock. Without a burst allowance no
window of one second ever holds more than `rate` sends (+1 for the window's edge), which is
what providers measure; waiting for a slot, not polling, keeps the limiter precise.
On PostgreSQL, where several processes dispatch, the global slots come from a schedule
shared through the database (`scheduler.shared_rate`); per-chat spacing across processes
is the claim's job (`scheduler.outbox.claim_batch`: a chat is claimed by one process at a
time, and not again within its interval of the last send).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.domain import ChannelName
from scheduler.shared_rate import SharedSchedule

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Telegram's documented limits: about 30 messages/s per bot, 1 message/s per chat.
TELEGRAM_RATE = 30.0
TELEGRAM_CHAT_RATE = 1.0
# We aim a little below each limit: network jitter between our clock and the provider's can
# bring two sends closer together on arrival than they left, and a 429 costs a whole pause.
HEADROOM = 0.955
CHAT_HEADROOM = 0.9
# Shared schedules: a slot woken later than this fraction of a slot's length is given up.
LATE_SLOT = 0.5
MAX_LATE_SLOTS = 5


@dataclass(slots=True)
class _Address:
    next_free: float = 0.0
    users: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ChannelLimiter:
    """Waits until a send to an address is allowed; one instance per channel and process."""

    def __init__(
        self,
        rate: float | None,
        *,
        per_address_rate: float | None = None,
        window: tuple[int, float] | None = None,
        shared: SharedSchedule | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        for name, value in (("rate", rate), ("per_address_rate", per_address_rate)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}")
        self.rate = rate  # sends (or cost units) per second overall; None: unlimited
        self.per_address_rate = per_address_rate  # sends per second per address; None: no limit
        self._clock = clock
        self._sleep = sleep
        # Several processes on one PostgreSQL: global slots come from the shared schedule.
        self.shared = shared
        self.slots_given_up = 0  # shared slots woken too late to use (see _acquire_shared)
        # (N, W): at most N sends in any W seconds, by the time each send was really let go.
        # Slots are kept on paper; a stalled event loop wakes several waiters late at once,
        # and this check stops them from leaving together.
        self.window = window
        self._granted: deque[float] = deque(maxlen=window[0] if window else 1)
        self._next_free = 0.0  # the earliest time the next global slot may start
        self._paused_until = 0.0
        # Least recently used first. Only addresses sent to within the last per-address
        # interval (or waiting now) carry information, so older ones are dropped as we go.
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    @property
    def tracked_addresses(self) -> int:
        """How many addresses the limiter remembers now (bounded by recent traffic)."""
        return len(self._addresses)

    async def acquire(self, address: str, cost: float = 1.0) -> None:
        """Wait until one send of `cost` units to `address` fits every limit, then take it."""
        if cost <= 0:
            raise ValueError(f"cost must be positive, got {cost!r}")
        if self.per_address_rate is None:
            await self._acquire_global(cost)
            return
        self._forget_idle()
        state = self._addresses.get(address)
        if state is None:
            state = self._addresses[address] = _Address()
        state.users += 1
        try:
            # One sender per address at a time: the next one's interval starts from the
            # moment this one actually got its global slot, not from when it asked.
            async with state.lock:
                delay = state.next_free - self._clock()
                if delay > 0:
                    await self._sleep(delay)
                # The address's own wait comes first so a slow chat never holds a global slot.
                await self._acquire_global(cost)
                state.next_free = self._clock() + cost / self.per_address_rate
                self._addresses.move_to_end(address)
        finally:
            state.users -= 1

    def pause(self, seconds: float) -> None:
        """A provider said "retry after `seconds`": nobody sends on this channel until then."""
        if seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            if self.shared is not None:
                self.shared.hold_off(seconds)

    async def _acquire_global(self, cost: float) -> None:
        if self.rate is None:
            paused = self._paused_until - self._clock()
            if paused > 0:
                await self._sleep(paused)
            return
        if self.shared is not None:
            await self._acquire_shared(cost, self.shared)
            return
        while True:
            now = self._clock()
            slot = max(now, self._next_free, self._paused_until)
            # Reserve before sleeping: waiters are served in the order they asked (fair).
            self._next_free = slot + cost / self.rate
            if slot > now:
                await self._sleep(slot - now)
            if self._paused_until > self._clock():
                continue  # a pause began while we slept: take a new slot after it
            await self._wait_for_window()
            return

    async def _acquire_shared(self, cost: float, shared: SharedSchedule) -> None:
        late_slots = 0
        while True:
            paused = self._paused_until - self._clock()
            if paused > 0:
                await self._sleep(paused)
            slot = await shared.slot(cost)
            delay = slot - self._clock()
            if delay > 0:
                await self._sleep(delay)
            if self._paused_until > self._clock():
                continue  # a pause began while we waited: this slot falls inside it
            # A stalled loop wakes late; sent now, the message would crowd the other
            # processes' next slots into one provider second (a 429 costs a whole pause).
            # Such a slot is given up, a few times at most.
            if self._clock() - slot > LATE_SLOT / shared.rate and late_slots < MAX_LATE_SLOTS:
                late_slots += 1
                self.slots_given_up += 1
                continue
            await self._wait_for_window()
            return

    async def _wait_for_window(self) -> None:
        if self.window is None:
            return
        count, seconds = self.window
        while len(self._granted) == count:
            wait = self._granted[0] + seconds - self._clock()
            if wait <= 0:
                break
            await self._sleep(wait)
        self._granted.append(self._clock())

    def _forget_idle(self) -> None:
        now = self._clock()
        while self._addresses:
            address, state = next(iter(self._addresses.items()))
            if state.users or state.next_free > now:
                return
            del self._addresses[address]


def limiter_for(
    channel: ChannelName, settings: Settings, engine: AsyncEngine | None = None
) -> ChannelLimiter:
    """The limiter a dispatcher process uses for one channel (create one per channel).

    With `engine` on PostgreSQL, where several processes may dispatch, the channel's global
    rate is shared between them through the database; on SQLite (one dispatcher) it stays
    in the process.
    """
    if channel is ChannelName.TELEGRAM:
        rate = TELEGRAM_RATE * HEADROOM
        return ChannelLimiter(
            rate,
            per_address_rate=TELEGRAM_CHAT_RATE * CHAT_HEADROOM,
            window=(round(rate), 1.0),
            shared=_shared(engine, channel, rate),
        )
    if channel is ChannelName.SMS:
        # Twilio counts SMS throughput in segments: callers pass cost=segments.
        rate = settings.twilio_sms_mps
        return ChannelLimiter(rate, shared=_shared(engine, channel, rate))
    if channel is ChannelName.WHATSAPP:
        rate = settings.twilio_whatsapp_mps
        return ChannelLimiter(rate, shared=_shared(engine, channel, rate))
    return ChannelLimiter(None)


def _shared(engine: AsyncEngine | None, channel: ChannelName, rate: float) -> SharedSchedule | None:
    if engine is None or engine.dialect.name != "postgresql":
        return None
    return SharedSchedule(engine, f"send:{channel}", rate)
