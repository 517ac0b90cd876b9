"""Outcomes are recorded as they happen: a kill can catch only the sends in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.dialogue import Dialogue
from bot.domain import ChannelName, RenderedMessage, SendResult
from bot.store.tables import deliveries
from scheduler.dispatcher import MAX_CONCURRENT_SENDS, Dispatcher
from scheduler.ratelimit import ChannelLimiter
from tests.scheduler.outbox_rows import (
    FakeChannel,
    add_cohort,
    add_learner,
    add_lessons,
    lesson_row,
)


class GatedChannel(FakeChannel):
    """Sends at once until `gate` is cleared; then every send waits for it (in flight)."""

    def __init__(self) -> None:
        super().__init__(ChannelName.SMS)
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0
        self.on_send: Callable[[int], object] = lambda sent: None

    async def send(self, message: RenderedMessage) -> SendResult:
        """Record the message once the gate is open."""
        await asyncio.sleep(0)  # a provider answers later, never at once
        if not self.gate.is_set():
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        result = await super().send(message)
        self.on_send(len(self.sent))
        return result


async def sent_rows(engine: AsyncEngine) -> int:
    """Deliveries recorded as sent."""
    async with engine.connect() as conn:
        query = select(func.count()).where(deliveries.c.status == "sent")
        return int((await conn.execute(query)).scalar_one())


async def test_sent_deliveries_are_recorded_while_the_batch_is_still_sending(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        rows = []
        for _ in range(100):
            learner, enrollment = await add_learner(conn, cohort)
            rows.append(lesson_row(learner, enrollment))
        await add_lessons(conn, rows)
    channel = GatedChannel()
    dispatcher = Dispatcher(engine, {ChannelName.SMS: channel}, dialogue, batch_size=100)
    sending = asyncio.create_task(dispatcher.dispatch_once(ChannelName.SMS))
    # 60 lessons of two messages each go out, then the rest of the batch is stuck at the
    # provider: each send in the channel (a real provider's latency stands in for this).
    channel.on_send = lambda sent: sent == 120 and channel.gate.clear()
    async with asyncio.timeout(10):
        while channel.waiting < 16 and not sending.done():
            await asyncio.sleep(0.001)
    await asyncio.sleep(0.2)  # what was sent is written meanwhile
    lessons_out = len(channel.sent) // 2
    recorded = await sent_rows(engine)
    # A kill now would send again only what is not recorded: at most the slots (issue 8: 32).
    assert lessons_out - recorded <= 32
    assert recorded >= 60 - 32
    assert MAX_CONCURRENT_SENDS <= 32
    channel.gate.set()
    result = await sending
    assert result.sent == 100 and await sent_rows(engine) == 100


async def test_a_claim_holds_no_more_than_half_a_lease_of_sending(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    limiters = {ChannelName.SMS: ChannelLimiter(10.0)}
    channels = {ChannelName.SMS: FakeChannel()}
    short = Dispatcher(engine, channels, dialogue, limiters=limiters, lease=timedelta(seconds=2))
    assert short.batch_limit(ChannelName.SMS) == 10  # 10/s x 1 s (not the usual 2 s: 20)
    usual = Dispatcher(engine, channels, dialogue, limiters=limiters)
    assert usual.batch_limit(ChannelName.SMS) == 20
    sized = Dispatcher(
        engine, channels, dialogue, limiters=limiters, batch_size=500, lease=timedelta(seconds=4)
    )
    assert sized.batch_limit(ChannelName.SMS) == 20
