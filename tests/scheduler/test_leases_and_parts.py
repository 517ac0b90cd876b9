"""A batch's lease is renewed while it is sent; a retried multi-part delivery resumes; the
batched write-backs store what the per-row statements would."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.base import SendError, SendErrorKind
from bot.dialogue import Dialogue
from bot.domain import ChannelName, EventType, OutboundMessage, RenderedMessage, SendResult
from bot.store.db import utcnow
from bot.store.deliveries import enqueue_replies
from bot.store.events import EventRow, append_events
from bot.store.tables import deliveries, enrollments, events
from scheduler import outbox
from scheduler.dispatcher import Dispatcher, RetryPolicy
from tests.scheduler.outbox_rows import (
    FakeChannel,
    add_cohort,
    add_learner,
    add_lessons,
    lesson_row,
)

LEASE = timedelta(seconds=0.3)
# Long enough that a loaded CI host's stall (a commit or a loop pause of a few hundred ms) is
# not taken for a dead process: renewals every 0.4 s leave 0.8 s before the lease runs out.
SLOW_BATCH_LEASE = timedelta(seconds=1.2)


class SlowChannel(FakeChannel):
    """Takes `seconds` per message, like a provider that is slow to answer."""

    def __init__(self, seconds: float) -> None:
        super().__init__(ChannelName.SMS)
        self.seconds = seconds

    async def send(self, message: RenderedMessage) -> SendResult:
        """Wait, then record."""
        await asyncio.sleep(self.seconds)
        return await super().send(message)


async def the_row(engine: AsyncEngine) -> Any:
    """The one delivery."""
    async with engine.connect() as conn:
        return (await conn.execute(select(deliveries))).one()


async def test_a_batch_slower_than_its_lease_is_not_taken_by_another_process(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment)])
    slow = SlowChannel(seconds=0.9)  # two messages: 1.8 s, half a lease more than one
    other = FakeChannel(ChannelName.SMS)
    lease = SLOW_BATCH_LEASE
    first = Dispatcher(engine, {ChannelName.SMS: slow}, dialogue, lease=lease, name="first")
    second = Dispatcher(engine, {ChannelName.SMS: other}, dialogue, lease=lease, name="second")

    sending = asyncio.create_task(first.dispatch_once(ChannelName.SMS))
    while (await the_row(engine)).status != "sending":  # until the first has claimed it
        await asyncio.sleep(0.01)
    released = 0
    while not sending.done():
        # What a second process's loop does: release expired leases, claim what is due.
        released += await second.release_expired()
        await second.dispatch_once(ChannelName.SMS)
        await asyncio.sleep(0.05)
    result = await sending

    assert (result.sent, len(slow.sent)) == (1, 2)
    assert (released, other.sent) == (0, [])
    row = await the_row(engine)
    assert (row.status, row.attempts, row.claimed_by) == ("sent", 1, None)


async def test_the_renewals_stop_when_the_batch_is_written(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment)])
    sms = SlowChannel(seconds=0.2)
    sms.fail = lambda message: SendError(SendErrorKind.RETRYABLE, "503", code="503")
    dispatcher = Dispatcher(engine, {ChannelName.SMS: sms}, dialogue, lease=LEASE)

    await dispatcher.dispatch_once(ChannelName.SMS)

    assert asyncio.all_tasks() == {asyncio.current_task()}  # no renewal left running
    row = await the_row(engine)
    assert (row.status, row.claimed_by, row.claimed_until) == ("pending", None, None)


def fail_once(channel: FakeChannel, text: str) -> None:
    """Make `channel` refuse (retryably) the first message containing `text`, once."""
    failed: list[str] = []

    def fail(message: RenderedMessage) -> SendError | None:
        if text in message.text and not failed:
            failed.append(message.text)
            return SendError(SendErrorKind.RETRYABLE, "503 from provider", code="503")
        return None

    channel.fail = fail


async def make_due(engine: AsyncEngine) -> None:
    """Bring the retry forward to now."""
    async with engine.begin() as conn:
        await conn.execute(update(deliveries).values(next_attempt_at=utcnow()))


async def test_a_retried_lesson_resumes_at_the_part_that_failed(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment)])
    sms = FakeChannel(ChannelName.SMS)
    fail_once(sms, "Where do you start?")  # the lesson's second message, its question
    dispatcher = Dispatcher(engine, {ChannelName.SMS: sms}, dialogue, rng=random.Random(3))

    first = await dispatcher.run_until_idle()
    row = await the_row(engine)
    assert (first.retried, first.messages) == (1, 1)
    assert (row.status, row.attempts, row.parts_sent) == ("pending", 1, 1)
    assert row.segments == sms.sent[0].segments

    await make_due(engine)
    second = await dispatcher.run_until_idle()

    assert (second.sent, second.messages) == (1, 1)
    texts = [message.text for message in sms.sent]
    assert len(texts) == 2 and texts[0].startswith("Start with users")  # sent once only
    assert "Where do you start?" in texts[1]
    row = await the_row(engine)
    assert (row.status, row.attempts, row.parts_sent) == ("sent", 2, 2)
    assert row.segments == sum(message.segments for message in sms.sent)
    async with engine.connect() as conn:
        moved = (await conn.execute(select(enrollments))).one()
        logged = (await conn.execute(select(events))).all()
    assert (moved.lesson_id, moved.question_index) == ("users", 0)
    assert [event.type for event in logged] == ["lesson_delivered"]


async def test_a_retried_sms_resumes_at_the_segment_group_that_failed(
    engine: AsyncEngine, dialogue: Dialogue
) -> None:
    now = utcnow()
    sentences = [f"Sentence {n} of a reply long enough to need several SMS." for n in range(12)]
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, _ = await add_learner(conn, cohort)
        long = OutboundMessage(ChannelName.SMS, "+1555", " ".join(sentences), "en")
        await enqueue_replies(
            conn, learner_id=learner, channel=ChannelName.SMS, messages=[long], now=now
        )
    sms = FakeChannel(ChannelName.SMS)
    fail_once(sms, "Sentence 11")  # the last part
    dispatcher = Dispatcher(
        engine, {ChannelName.SMS: sms}, dialogue, sms_max_segments=1, rng=random.Random(3)
    )

    await dispatcher.run_until_idle()
    before = [message.text for message in sms.sent]
    row = await the_row(engine)
    assert len(before) >= 2 and row.parts_sent == len(before)
    await make_due(engine)
    await dispatcher.run_until_idle()

    after = [message.text for message in sms.sent]
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert "Sentence 11" in after[-1]
    assert " ".join(after).split() == " ".join(sentences).split()  # every word, once
    row = await the_row(engine)
    assert (row.status, row.parts_sent, row.segments) == ("sent", len(after), len(after))


async def test_a_dead_letter_keeps_what_was_sent(engine: AsyncEngine, dialogue: Dialogue) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment)])
    sms = FakeChannel(ChannelName.SMS)
    sms.fail = lambda message: (
        SendError(SendErrorKind.RETRYABLE, "503", code="503")
        if "Where do you start?" in message.text
        else None
    )
    dispatcher = Dispatcher(
        engine, {ChannelName.SMS: sms}, dialogue, retry=RetryPolicy(max_attempts=2)
    )

    await dispatcher.run_until_idle()
    await make_due(engine)
    await dispatcher.run_until_idle()

    row = await the_row(engine)
    assert (row.status, row.attempts, row.parts_sent) == ("dead", 2, 1)
    assert [message.text.startswith("Start with users") for message in sms.sent] == [True]


async def test_batched_event_rows_read_back_as_the_event_log_writes_them(
    engine: AsyncEngine,
) -> None:
    now = utcnow()
    rows = [
        EventRow(
            type=EventType.ANSWERED,
            learner_key="key-1",
            cohort_id=None,
            course_id="basics",
            lesson_id="users",
            question_id="q1",
            locale="ar",
            channel="sms",
            correct=False,
            attempt=2,
            detail={"answer": "٢", "options": [1, 2]},
            occurred_at=now,
        ),
        EventRow(type=EventType.LESSON_DELIVERED, learner_key="key-2", occurred_at=now),
    ]
    async with engine.begin() as conn:
        await outbox.insert_events(conn, rows)
        await append_events(conn, rows)  # the event log's own insert, for comparison
    async with engine.connect() as conn:
        stored = (await conn.execute(select(events).order_by(events.c.id))).all()
    batched, logged = stored[:2], stored[2:]
    assert [tuple(row)[1:] for row in batched] == [tuple(row)[1:] for row in logged]
    assert batched[0].detail == {"answer": "٢", "options": [1, 2]}
    assert (batched[1].type, batched[1].detail, batched[1].correct) == (
        "lesson_delivered",
        None,
        None,
    )
