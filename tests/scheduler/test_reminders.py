"""remind_once: reminder rows, counts, and pausing with a `paused` event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import ChannelName, DeliveryKind
from bot.store.tables import deliveries, enrollments, events, learners
from scheduler.reminders import remind_once
from scheduler.schedule import Reminders, Schedule
from scheduler.seed import seed_cohort

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
COURSES = {"course": ["l0", "l1"]}


async def ask(engine: AsyncEngine, asked: datetime, reminders_sent: int = 0) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(enrollments).values(
                lesson_id="l0",
                question_index=0,
                awaiting_since=asked,
                reminders_sent=reminders_sent,
                next_due_at=NOW + timedelta(days=7),
            )
        )


async def test_reminds_once_per_interval_then_pauses(engine: AsyncEngine) -> None:
    schedule = Schedule(reminders=Reminders(after_hours=24, max=1))
    await seed_cohort(
        engine,
        learners_count=3,
        course_id="course",
        now=NOW,
        schedule=schedule,
        channel=ChannelName.SMS,
    )
    asked = NOW - timedelta(hours=25)
    await ask(engine, asked)
    stats = await remind_once(engine, COURSES, now=NOW)
    assert (stats.planned, stats.inserted, stats.paused) == (3, 3, 0)
    assert (await remind_once(engine, COURSES, now=NOW)).planned == 0  # counted: not yet again
    async with engine.connect() as conn:
        kinds = list((await conn.execute(select(deliveries.c.kind))).scalars())
        counts = set((await conn.execute(select(enrollments.c.reminders_sent))).scalars())
    assert kinds == [DeliveryKind.REMINDER.value] * 3 and counts == {1}

    paused = await remind_once(engine, COURSES, now=asked + timedelta(hours=48))
    assert paused.paused == 3
    async with engine.connect() as conn:
        statuses = set((await conn.execute(select(learners.c.status))).scalars())
        logged = list(await conn.execute(select(events.c.type, events.c.lesson_id)))
    assert statuses == {"paused"}
    assert [tuple(row) for row in logged] == [("paused", "l0")] * 3
    assert (await remind_once(engine, COURSES, now=asked + timedelta(hours=96))).examined == 0


async def test_unanswered_for_less_than_the_interval_gets_nothing(engine: AsyncEngine) -> None:
    await seed_cohort(
        engine, learners_count=2, course_id="course", now=NOW, channel=ChannelName.SMS
    )
    await ask(engine, NOW - timedelta(hours=23))
    stats = await remind_once(engine, COURSES, now=NOW)
    assert stats.planned == 0 and stats.paused == 0
