"""Rate limits shared by several dispatcher processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.domain import ChannelName, DeliveryKind, DeliveryStatus
from bot.store.db import create_engine, utcnow
from bot.store.tables import deliveries
from scheduler import outbox
from scheduler.ratelimit import ChannelLimiter, limiter_for
from scheduler.shared_rate import SharedSchedule
from tests.scheduler.outbox_rows import add_cohort, add_learner

ON_POSTGRES = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
RATE = 50.0


@ON_POSTGRES
async def test_two_processes_share_one_rate(engine: AsyncEngine) -> None:
    # Two limiters, as two processes would have, each with senders enough for the full rate.
    limiters = [
        ChannelLimiter(RATE, shared=SharedSchedule(engine, "send:test", RATE)) for _ in range(2)
    ]
    granted: list[float] = []

    async def sender(limiter: ChannelLimiter, sends: int) -> None:
        for _ in range(sends):
            await limiter.acquire("any")
            granted.append(time.monotonic())

    await asyncio.gather(*(sender(limiter, 10) for limiter in limiters for _ in range(4)))
    granted.sort()
    span = granted[-1] - granted[0]
    # 80 sends at 50/s together: 1.58 s at least; each alone would have taken 0.79 s.
    assert span >= (len(granted) - 1) / RATE * 0.97
    assert span < (len(granted) - 1) / RATE * 2.0  # and the rate is used, not wasted
    tenth = [b - a for a, b in zip(granted, granted[5:], strict=False)]
    assert min(tenth) >= 5 / RATE * 0.6  # no bunching: 5 sends never within 0.06 s


@ON_POSTGRES
async def test_a_retry_after_holds_off_every_process(engine: AsyncEngine) -> None:
    first = limiter_for(ChannelName.TELEGRAM, Settings(), engine)
    second = limiter_for(ChannelName.TELEGRAM, Settings(), engine)
    assert first.shared is not None and second.shared is not None
    await first.acquire("1")
    first.pause(1.0)  # a 429 in one process
    await asyncio.sleep(0.1)  # the pause reaches the database
    started = time.monotonic()
    await second.acquire("2")
    assert time.monotonic() - started >= 0.8


async def test_sqlite_keeps_the_limiter_in_the_process() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        assert limiter_for(ChannelName.TELEGRAM, Settings(), engine).shared is None
    finally:
        await engine.dispose()


async def _telegram_learner(engine: AsyncEngine, deliveries_due: int) -> int:
    now = utcnow()
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, _ = await add_learner(conn, cohort, channel=ChannelName.TELEGRAM)
        if not deliveries_due:
            return learner
        await conn.execute(
            insert(deliveries),
            [
                {
                    "learner_id": learner,
                    "lesson_id": f"reply-{n}",
                    "kind": DeliveryKind.REPLY.value,
                    "channel": "telegram",
                    "status": "pending",
                    "priority": 0,
                    "payload": [],
                    "due_at": now - timedelta(seconds=10 - n),
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(deliveries_due)
            ],
        )
    return learner


async def _claim(engine: AsyncEngine, token: str, now_offset: float = 0.0) -> list[int]:
    now = utcnow() + timedelta(seconds=now_offset)
    async with engine.begin() as conn:
        rows = await outbox.claim_batch(
            conn,
            channel=ChannelName.TELEGRAM,
            token=token,
            limit=10,
            now=now,
            lease_until=now + timedelta(seconds=60),
            chat_interval=timedelta(seconds=1.1),
        )
    return [row.id for row in rows]


@ON_POSTGRES
async def test_a_chat_is_claimed_by_one_process_at_a_time(engine: AsyncEngine) -> None:
    await _telegram_learner(engine, 1)
    await _telegram_learner(engine, 0)
    first = await _claim(engine, "a:1")
    assert len(first) == 1
    # A second reply to that chat arrives while the first is in flight in process A.
    async with engine.begin() as conn:
        learner = (await conn.execute(select(deliveries.c.learner_id))).scalar_one()
        now = utcnow()
        await conn.execute(
            insert(deliveries),
            {
                "learner_id": learner,
                "lesson_id": "reply-late",
                "kind": DeliveryKind.REPLY.value,
                "channel": "telegram",
                "status": "pending",
                "priority": 0,
                "payload": [],
                "due_at": now,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
    assert await _claim(engine, "b:1") == []  # in flight in process A
    async with engine.begin() as conn:  # A sends it and records it
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id == first[0])
            .values(status=DeliveryStatus.SENT.value, sent_at=utcnow(), claimed_by=None)
        )
    assert await _claim(engine, "b:2") == []  # sent less than the chat's interval ago
    assert len(await _claim(engine, "b:3", now_offset=1.2)) == 1  # later, B may send it


@ON_POSTGRES
async def test_a_claim_takes_a_chats_first_due_delivery_only(engine: AsyncEngine) -> None:
    await _telegram_learner(engine, 3)
    await _telegram_learner(engine, 2)
    async with engine.connect() as conn:
        firsts = (
            await conn.execute(
                select(deliveries.c.id).where(deliveries.c.lesson_id == "reply-0").order_by("id")
            )
        ).scalars()
        expected = list(firsts)
    assert sorted(await _claim(engine, "a:1")) == expected  # in order, one per chat


class LateFirstSchedule:
    """A shared schedule whose first slot is already 0.2 s gone (a stalled loop's view)."""

    rate = 10.0  # slots 0.1 s apart

    def __init__(self) -> None:
        self.slots: list[float] = []

    async def slot(self, cost: float) -> float:
        now = time.monotonic()
        self.slots.append(now - 0.2 if not self.slots else now + 0.05)
        return self.slots[-1]

    def hold_off(self, seconds: float) -> None:
        return None


async def test_a_slot_woken_late_is_given_up_not_sent_into_the_next_ones() -> None:
    schedule = LateFirstSchedule()
    limiter = ChannelLimiter(10.0, shared=schedule)  # type: ignore[arg-type]
    await limiter.acquire("1")
    assert limiter.slots_given_up == 1
    assert time.monotonic() >= schedule.slots[1]  # it went at the next slot instead


@ON_POSTGRES
async def test_a_claim_serves_the_chats_with_the_most_left_first(engine: AsyncEngine) -> None:
    # Three chats, 1, 4 and 2 deliveries due; a claim of 2 takes the first due of the chats
    # with 4 and 2 left, so no chat is left alone at the end with several to send.
    for count in (1, 4, 2):
        await _telegram_learner(engine, count)
    now = utcnow()
    async with engine.begin() as conn:
        rows = await outbox.claim_batch(
            conn,
            channel=ChannelName.TELEGRAM,
            token="a:1",
            limit=2,
            now=now,
            lease_until=now + timedelta(seconds=60),
            chat_interval=timedelta(seconds=1.1),
        )
        learners_by_count = {
            count: learner
            for learner, count in await conn.execute(
                select(deliveries.c.learner_id, func.count()).group_by(deliveries.c.learner_id)
            )
        }
    assert {row.learner_id for row in rows} == {learners_by_count[4], learners_by_count[2]}
    assert all(row.lesson_id == "reply-0" for row in rows)  # each chat's first, in its order
