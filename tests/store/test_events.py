"""The event log: appended in one batch, read back exactly as written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import ChannelName, EventType
from bot.store.events import EventRow, append_events
from bot.store.tables import events


async def test_append_events_writes_every_field_in_one_statement(engine: AsyncEngine) -> None:
    at = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    rows = [
        EventRow(type=EventType.ENROLLED, learner_key="k1", cohort_id=7, occurred_at=at),
        EventRow(
            type=EventType.ANSWERED,
            learner_key="k1",
            cohort_id=7,
            course_id="digital-skills",
            lesson_id="user-centred-design",
            question_id="q1",
            locale="sw",
            channel=ChannelName.SMS,
            correct=False,
            attempt=2,
            detail={"response": "B"},
            occurred_at=at,
        ),
        EventRow(type=EventType.STOPPED, learner_key="k2", occurred_at=at),
    ]
    statements: list[Any] = []
    event.listen(engine.sync_engine, "before_execute", lambda *args: statements.append(args[1]))

    async with engine.begin() as conn:
        await append_events(conn, rows)

    assert len(statements) == 1
    async with engine.connect() as conn:
        stored = (await conn.execute(select(events).order_by(events.c.id))).mappings().all()
    assert [(row["type"], row["learner_key"]) for row in stored] == [
        ("enrolled", "k1"),
        ("answered", "k1"),
        ("stopped", "k2"),
    ]
    answered = dict(stored[1])
    del answered["id"]
    assert answered == {
        "occurred_at": at,
        "type": "answered",
        "learner_key": "k1",
        "cohort_id": 7,
        "course_id": "digital-skills",
        "lesson_id": "user-centred-design",
        "question_id": "q1",
        "locale": "sw",
        "channel": "sms",
        "correct": False,
        "attempt": 2,
        "detail": {"response": "B"},
    }


async def test_events_default_to_now(engine: AsyncEngine) -> None:
    before = datetime.now(UTC)
    async with engine.begin() as conn:
        await append_events(conn, [EventRow(type=EventType.RESTARTED, learner_key="k")])

    async with engine.connect() as conn:
        occurred_at = (await conn.execute(select(events.c.occurred_at))).scalar_one()
    assert before <= occurred_at <= datetime.now(UTC)


async def test_appending_nothing_writes_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await append_events(conn, [])

    async with engine.connect() as conn:
        assert (await conn.execute(select(events))).all() == []


async def test_events_roll_back_with_the_callers_transaction(engine: AsyncEngine) -> None:
    class Abort(Exception):
        pass

    try:
        async with engine.begin() as conn:
            await append_events(conn, [EventRow(type=EventType.ENROLLED, learner_key="k")])
            raise Abort
    except Abort:
        pass

    async with engine.connect() as conn:
        assert (await conn.execute(select(events))).all() == []
