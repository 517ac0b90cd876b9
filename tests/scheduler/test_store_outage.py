"""The dispatcher and the jobs on a store that refuses writes: they back off and say so once.

SQLite's `PRAGMA query_only` makes every write fail with SQLITE_READONLY ("attempt to write a
readonly database"), the error a read-only file or volume gives, on connections opened while
the switch is on (the pool is disposed to reopen them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import ChannelName
from bot.store import migrate
from bot.store.db import create_engine
from bot.store.tables import deliveries
from scheduler import outbox
from scheduler.app import SchedulerApp
from scheduler.dispatcher import Dispatcher
from tests.scheduler.outbox_rows import (
    FakeChannel,
    add_cohort,
    add_learner,
    add_lessons,
    lesson_row,
    make_dialogue,
    write_course,
)


class ReadOnlySwitch:
    """Turns SQLite's query_only on or off for the connections of an engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.on = False
        event.listen(engine.sync_engine, "connect", self._connected)

    def _connected(self, dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA query_only={int(self.on)}")
        cursor.close()

    async def set(self, on: bool) -> None:
        self.on = on
        await self.engine.dispose()  # reconnect with the new setting


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'learnbot.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    yield engine
    await engine.dispose()


def outage_lines(caplog: pytest.LogCaptureFixture, who: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.store.availability" and r.getMessage().startswith(who)
    ]


async def test_the_dispatcher_backs_off_on_a_read_only_store_and_sends_once_it_is_back(
    sqlite_engine: AsyncEngine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = sqlite_engine
    switch = ReadOnlySwitch(engine)
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment)])
    claims: list[float] = []
    real_claim = outbox.claim_batch

    async def counted_claim(*args: Any, **kwargs: Any) -> list[outbox.ClaimedRow]:
        claims.append(asyncio.get_running_loop().time())
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(outbox, "claim_batch", counted_claim)
    dialogue = make_dialogue(engine, write_course(tmp_path))
    sms = FakeChannel(ChannelName.SMS)
    dispatcher = Dispatcher(engine, {ChannelName.SMS: sms}, dialogue)
    caplog.set_level(logging.INFO)

    await switch.set(True)
    running = asyncio.create_task(dispatcher.run_forever(idle_seconds=0.02))
    await asyncio.sleep(2.5)
    refused_claims = len(claims)
    await switch.set(False)
    dispatcher.wake()  # e.g. a turn that went through again: no need to wait out the backoff
    while not sms.sent:
        await asyncio.sleep(0.01)
    dispatcher.stop()
    await running
    await dialogue.aclose()

    # Without backoff the loop would have tried every 20 ms: some 120 times.
    assert refused_claims <= 3
    lines = outage_lines(caplog, "dispatcher (sms)")
    assert len(lines) == 2, lines
    assert "refuses writes (read-only)" in lines[0]
    assert "takes writes again" in lines[1]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    async with engine.connect() as conn:
        assert (await conn.execute(select(deliveries.c.status))).scalars().all() == ["sent"]
    assert len(sms.sent) == 2  # the lesson's text and question, once


async def test_the_jobs_skip_their_runs_while_the_store_refuses_and_say_so_once(
    sqlite_engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = sqlite_engine
    switch = ReadOnlySwitch(engine)
    dialogue = make_dialogue(engine, write_course(tmp_path))
    dispatcher = Dispatcher(engine, {}, dialogue)
    jobs = SchedulerApp(engine, dialogue.courses, dispatcher, misfire_grace=dispatcher.lease)
    caplog.set_level(logging.INFO)

    await switch.set(True)
    for _ in range(5):
        await jobs.housekeep()  # a DELETE: refused by a read-only store
    outage = jobs.outages["housekeeping"]
    assert outage.refusals == 1  # the four runs after the first waited out the backoff
    await switch.set(False)
    outage.wait_until = 0.0  # the backoff (an hour here) has run out
    await jobs.housekeep()
    await dialogue.aclose()

    lines = outage_lines(caplog, "housekeeping job")
    assert len(lines) == 2, lines
    assert "refuses writes (read-only)" in lines[0] and "takes writes again" in lines[1]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_a_batch_sent_while_the_store_went_read_only_is_written_back_once_it_is_back(
    sqlite_engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = sqlite_engine
    switch = ReadOnlySwitch(engine)
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        pairs = [await add_learner(conn, cohort) for _ in range(3)]
        await add_lessons(conn, [lesson_row(learner, enrollment) for learner, enrollment in pairs])
    dialogue = make_dialogue(engine, write_course(tmp_path))
    sms = FakeChannel(ChannelName.SMS)
    dispatcher = Dispatcher(engine, {ChannelName.SMS: sms}, dialogue)
    real_send = dispatcher._send

    async def send_then_lose_the_store(batch: Any) -> None:
        # Claimed, then the store goes read-only: each outcome's write is refused as it comes.
        await switch.set(True)

        async def back_later() -> None:
            await asyncio.sleep(1.2)
            await switch.set(False)

        back = asyncio.ensure_future(back_later())
        await real_send(batch)
        await back

    dispatcher._send = send_then_lose_the_store  # type: ignore[method-assign]
    caplog.set_level(logging.INFO)

    result = await dispatcher.dispatch_once(ChannelName.SMS)
    await dialogue.aclose()

    assert (result.claimed, result.sent) == (3, 3)
    async with engine.connect() as conn:
        statuses = (await conn.execute(select(deliveries.c.status))).scalars().all()
    assert statuses == ["sent"] * 3  # recorded: the lease running out cannot send them again
    assert len(sms.sent) == 6
    lines = outage_lines(caplog, "dispatcher write-back")
    assert len(lines) == 2, lines
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
