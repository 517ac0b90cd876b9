"""Deliveries on a channel this process does not send on are logged once, not left silent."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import ChannelName
from bot.store.tables import deliveries
from scheduler import dispatcher as dispatcher_module
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


async def queue(engine: AsyncEngine, channel: ChannelName, n: int) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        for _ in range(n):
            learner, enrollment = await add_learner(conn, cohort, channel=channel)
            await add_lessons(conn, [lesson_row(learner, enrollment, channel=channel)])


async def test_pending_rows_on_a_channel_not_configured_are_logged_once_per_channel(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dialogue = make_dialogue(engine, write_course(tmp_path))
    telegram = FakeChannel(ChannelName.TELEGRAM)
    dispatcher = Dispatcher(engine, {ChannelName.TELEGRAM: telegram}, dialogue)
    await queue(engine, ChannelName.SMS, 3)
    await queue(engine, ChannelName.TELEGRAM, 1)
    caplog.set_level(logging.WARNING, logger="scheduler.dispatcher")

    assert await dispatcher.report_unconfigured() == {"sms": 3}
    assert await dispatcher.report_unconfigured() == {"sms": 3}  # still there: said once
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "3 deliveries pending for sms, which is not configured: they wait until it is (set "
        "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SMS_FROM/TWILIO_MESSAGING_SERVICE_SID "
        "and restart); see `learnbot outbox pending`"
    ]
    # Cleared (cancelled by the trainer), then back: said again.
    async with engine.begin() as conn:
        await conn.execute(
            update(deliveries).where(deliveries.c.channel == "sms").values(status="cancelled")
        )
    assert await dispatcher.report_unconfigured() == {}
    await queue(engine, ChannelName.SMS, 1)
    await dispatcher.report_unconfigured()
    assert len(caplog.records) == 2
    assert caplog.records[1].getMessage().startswith("1 delivery pending for sms")
    await dialogue.aclose()


async def test_serving_reports_them_while_it_sends_the_configured_channels(
    engine: AsyncEngine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatcher_module, "UNCONFIGURED_CHECK_SECONDS", 0.1)
    dialogue = make_dialogue(engine, write_course(tmp_path))
    telegram = FakeChannel(ChannelName.TELEGRAM)
    dispatcher = Dispatcher(engine, {ChannelName.TELEGRAM: telegram}, dialogue)
    await queue(engine, ChannelName.WHATSAPP, 2)
    await queue(engine, ChannelName.TELEGRAM, 1)
    caplog.set_level(logging.WARNING, logger="scheduler.dispatcher")
    running = asyncio.create_task(dispatcher.run_forever(idle_seconds=0.05))
    for _ in range(100):
        if telegram.sent and caplog.records:
            break
        await asyncio.sleep(0.05)
    dispatcher.stop()
    await asyncio.wait_for(running, 5)
    assert len(telegram.sent) >= 1
    assert [r.getMessage().split(",")[0] for r in caplog.records] == [
        "2 deliveries pending for whatsapp"
    ]
    await dialogue.aclose()
