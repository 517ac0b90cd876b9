"""Replies through the outbox (in the turn's transaction), and the WhatsApp 24-hour window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.base import SendError, SendErrorKind
from bot.dialogue import Dialogue
from bot.dialogue import turn as turn_module
from bot.domain import ChannelName, InboundMessage
from bot.store.db import utcnow
from bot.store.tables import deliveries, enrollments
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

TEMPLATE_SID = "HX" + "0" * 32
PHONE = "+254700000001"


@pytest.fixture
async def dialogue(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Dialogue]:
    """A dialogue that queues SMS and WhatsApp replies, with an English WhatsApp template."""
    dialogue = make_dialogue(
        engine,
        write_course(tmp_path),
        outbox_channels=frozenset({ChannelName.SMS, ChannelName.WHATSAPP}),
        whatsapp_templates={"en": TEMPLATE_SID},
    )
    yield dialogue
    await dialogue.aclose()


async def outbox_rows(engine: AsyncEngine) -> list[Any]:
    """Every delivery, by id."""
    async with engine.connect() as conn:
        return list((await conn.execute(select(deliveries).order_by(deliveries.c.id))).all())


async def test_a_turn_queues_its_replies_and_wakes_the_dispatcher(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    sms = FakeChannel(ChannelName.SMS)
    dispatcher = Dispatcher(engine, {ChannelName.SMS: sms}, dialogue)
    woken: list[bool] = []
    dialogue.on_enqueued = lambda: woken.append(True)
    replies = await dialogue.handle(InboundMessage(ChannelName.SMS, PHONE, "HELP", provider_id="1"))
    assert replies == [] and woken == [True]
    [row] = await outbox_rows(engine)
    assert (row.kind, row.priority, row.status, row.enrollment_id) == ("reply", 0, "pending", None)
    assert row.lesson_id.startswith("reply:") and row.payload[0]["address"] == PHONE
    await dispatcher.run_until_idle()
    assert [m.address for m in sms.sent] == [PHONE]
    assert sms.sent[0].text.startswith("You can send:")
    assert (await outbox_rows(engine))[0].status == "sent"


async def test_a_turn_that_fails_leaves_no_reply_row(
    engine: AsyncEngine, dialogue: Dialogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = turn_module.enqueue_replies

    async def enqueue_then_fail(*args: Any, **kwargs: Any) -> None:
        await real(*args, **kwargs)
        raise RuntimeError("the database went away after the insert")

    monkeypatch.setattr(turn_module, "enqueue_replies", enqueue_then_fail)
    replies = await dialogue.handle(InboundMessage(ChannelName.SMS, PHONE, "HELP", provider_id="2"))
    assert [r.text for r in replies] == [
        "Sorry, something went wrong. Please try again in a moment."
    ]
    assert await outbox_rows(engine) == []


async def test_the_sandbox_stays_on_the_direct_path(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    replies = await dialogue.handle(InboundMessage(ChannelName.SANDBOX, "s1", "HELP"))
    assert replies and await outbox_rows(engine) == []


async def test_outside_the_window_a_template_goes_first_and_the_lesson_follows_the_reply(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    whatsapp = FakeChannel(ChannelName.WHATSAPP)
    dispatcher = Dispatcher(engine, {ChannelName.WHATSAPP: whatsapp}, dialogue)
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(
            conn,
            cohort,
            channel=ChannelName.WHATSAPP,
            address=PHONE,
            last_inbound_at=utcnow() - timedelta(hours=25),
        )
        await add_lessons(conn, [lesson_row(learner, enrollment, channel=ChannelName.WHATSAPP)])
    result = await dispatcher.run_until_idle()
    assert result.held == 1
    [template] = whatsapp.sent
    assert template.content_sid == TEMPLATE_SID
    assert template.content_variables == (("1", "Start with users"),)
    lesson, announced = await outbox_rows(engine)
    assert (lesson.status, announced.kind, announced.status) == ("held", "template", "sent")
    assert (await dispatcher.run_until_idle()).claimed == 0  # held until the learner writes

    replies = await dialogue.handle(
        InboundMessage(ChannelName.WHATSAPP, PHONE, "1", provider_id="SM1")
    )
    assert replies == []
    assert [r.kind for r in await outbox_rows(engine)] == ["lesson", "template"]  # no hint
    await dispatcher.run_until_idle()
    assert whatsapp.sent[1].text.startswith("*Start with users*")
    assert whatsapp.sent[1].content_sid is None
    assert (await outbox_rows(engine))[0].status == "sent"
    async with engine.connect() as conn:
        assert (await conn.execute(select(enrollments.c.question_index))).scalar_one() == 0


async def test_window_closed_at_the_provider_sends_the_template_and_holds(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    whatsapp = FakeChannel(ChannelName.WHATSAPP)
    whatsapp.fail = lambda m: (
        None
        if m.content_sid
        else SendError(SendErrorKind.WINDOW_CLOSED, "outside the window", code="63016")
    )
    dispatcher = Dispatcher(engine, {ChannelName.WHATSAPP: whatsapp}, dialogue)
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(
            conn, cohort, channel=ChannelName.WHATSAPP, address=PHONE
        )  # our clock says the window is open
        await add_lessons(conn, [lesson_row(learner, enrollment, channel=ChannelName.WHATSAPP)])
    await dispatcher.run_until_idle()
    lesson, _ = await outbox_rows(engine)
    assert (lesson.status, lesson.error_code) == ("held", "63016")
    assert [m.content_sid for m in whatsapp.sent] == [TEMPLATE_SID]


async def test_without_a_template_the_lesson_is_held_and_says_why(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    dialogue = make_dialogue(engine, write_course(tmp_path))
    whatsapp = FakeChannel(ChannelName.WHATSAPP)
    dispatcher = Dispatcher(engine, {ChannelName.WHATSAPP: whatsapp}, dialogue)
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(
            conn, cohort, channel=ChannelName.WHATSAPP, last_inbound_at=utcnow() - timedelta(days=3)
        )
        await add_lessons(conn, [lesson_row(learner, enrollment, channel=ChannelName.WHATSAPP)])
    await dispatcher.run_until_idle()
    await dialogue.aclose()
    [lesson] = await outbox_rows(engine)
    assert lesson.status == "held" and "no WhatsApp template" in lesson.error_detail
    assert whatsapp.sent == []


async def test_a_lesson_held_after_its_first_part_resumes_at_the_question(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    whatsapp = FakeChannel(ChannelName.WHATSAPP)
    closed = [True]
    whatsapp.fail = lambda m: (
        SendError(SendErrorKind.WINDOW_CLOSED, "outside the window", code="63016")
        if closed[0] and "Where do you start?" in m.text
        else None
    )  # the window closes between the lesson's text and its question
    dispatcher = Dispatcher(engine, {ChannelName.WHATSAPP: whatsapp}, dialogue)
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(
            conn,
            cohort,
            channel=ChannelName.WHATSAPP,
            address=PHONE,
            last_inbound_at=utcnow() - timedelta(hours=23),  # open, by our clock
        )
        await add_lessons(conn, [lesson_row(learner, enrollment, channel=ChannelName.WHATSAPP)])
    await dispatcher.run_until_idle()
    lesson, _ = await outbox_rows(engine)
    assert (lesson.status, lesson.parts_sent) == ("held", 1)

    closed[0] = False
    await dialogue.handle(InboundMessage(ChannelName.WHATSAPP, PHONE, "1", provider_id="SM2"))
    await dispatcher.run_until_idle()

    texts = [m.text for m in whatsapp.sent if m.content_sid is None]
    assert len(texts) == 2 and texts[0].startswith("*Start with users*")  # not sent again
    assert "Where do you start?" in texts[1]
    lesson, _ = await outbox_rows(engine)
    assert (lesson.status, lesson.parts_sent) == ("sent", 2)


async def test_one_template_per_silence_however_many_lessons_fall_due(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    whatsapp = FakeChannel(ChannelName.WHATSAPP)
    dispatcher = Dispatcher(engine, {ChannelName.WHATSAPP: whatsapp}, dialogue)
    learner, enrollment = await silent_whatsapp_learner(engine, "users")
    await dispatcher.run_until_idle()
    assert [m.content_sid for m in whatsapp.sent] == [TEMPLATE_SID]
    async with engine.begin() as conn:  # the next slot comes while the learner is silent
        next_lesson = lesson_row(
            learner, enrollment, lesson_id="data", channel=ChannelName.WHATSAPP
        )
        await add_lessons(conn, [next_lesson])
    assert (await dispatcher.run_until_idle()).held == 1
    assert [m.content_sid for m in whatsapp.sent] == [TEMPLATE_SID]  # no second template
    held = [r for r in await outbox_rows(engine) if r.kind == "lesson"]
    assert [r.status for r in held] == ["held", "held"]
    assert "already waits" in held[1].error_detail

    await dialogue.handle(InboundMessage(ChannelName.WHATSAPP, PHONE, "1", provider_id="SM9"))
    await dispatcher.run_until_idle()
    lessons = [m.text.split("\n")[0] for m in whatsapp.sent[1:] if m.content_sid is None]
    assert lessons[0].startswith("*Start with users*")
    assert [r.status for r in await outbox_rows(engine) if r.kind == "lesson"] == ["sent", "sent"]


async def test_two_lessons_held_in_one_batch_share_one_template(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    whatsapp = FakeChannel(ChannelName.WHATSAPP)
    dispatcher = Dispatcher(engine, {ChannelName.WHATSAPP: whatsapp}, dialogue)
    await silent_whatsapp_learner(engine, "users", "data")
    assert (await dispatcher.run_until_idle()).held == 2
    assert [m.content_sid for m in whatsapp.sent] == [TEMPLATE_SID]


async def silent_whatsapp_learner(engine: AsyncEngine, *lesson_ids: str) -> tuple[int, int]:
    """A WhatsApp learner silent for two days, with these lessons due: (learner, enrollment)."""
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(
            conn,
            cohort,
            channel=ChannelName.WHATSAPP,
            address=PHONE,
            last_inbound_at=utcnow() - timedelta(days=2),
        )
        rows = [
            lesson_row(learner, enrollment, lesson_id=lesson_id, channel=ChannelName.WHATSAPP)
            for lesson_id in lesson_ids
        ]
        await add_lessons(conn, rows)
    return learner, enrollment


async def test_next_in_answer_to_the_template_sends_the_held_lesson_only(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    whatsapp = FakeChannel(ChannelName.WHATSAPP)
    dispatcher = Dispatcher(engine, {ChannelName.WHATSAPP: whatsapp}, dialogue)
    await silent_whatsapp_learner(engine, "users")
    await dispatcher.run_until_idle()

    await dialogue.handle(InboundMessage(ChannelName.WHATSAPP, PHONE, "NEXT", provider_id="SM7"))
    await dispatcher.run_until_idle()

    after_template = [m.text for m in whatsapp.sent[1:]]
    assert after_template[0].startswith("*Start with users*")
    assert not any("data" in text.lower() for text in after_template)
    assert [r.kind for r in await outbox_rows(engine)] == ["lesson", "template"]  # no reply
