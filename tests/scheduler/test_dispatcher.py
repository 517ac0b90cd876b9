"""The dispatcher: claims in priority order, sends lessons, retries, dead letters, failures."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.base import SendError, SendErrorKind
from bot.dialogue import Dialogue
from bot.domain import ChannelName, DeliveryKind, EventType, LearnerStatus, OutboundMessage
from bot.store.db import utcnow
from bot.store.deliveries import enqueue_replies
from bot.store.tables import deliveries, enrollments, events, learners
from scheduler import outbox
from scheduler.dispatcher import Dispatcher, RetryPolicy
from scheduler.planner import reminder_key
from tests.scheduler.outbox_rows import (
    FakeChannel,
    add_cohort,
    add_learner,
    add_lessons,
    lesson_row,
)


@pytest.fixture
def sms() -> FakeChannel:
    """The SMS channel, recording sends."""
    return FakeChannel(ChannelName.SMS)


@pytest.fixture
def dispatcher(engine: AsyncEngine, dialogue: Dialogue, sms: FakeChannel) -> Dispatcher:
    """A dispatcher over the fake SMS channel, seeded jitter, 3 attempts."""
    return Dispatcher(
        engine,
        {ChannelName.SMS: sms},
        dialogue,
        retry=RetryPolicy(max_attempts=3, base=10.0),
        rng=random.Random(7),
    )


async def rows(engine: AsyncEngine) -> list[Any]:
    """Every delivery, by id."""
    async with engine.connect() as conn:
        return list((await conn.execute(select(deliveries).order_by(deliveries.c.id))).all())


async def test_claim_takes_replies_first_then_oldest_due(engine: AsyncEngine) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        a, ea = await add_learner(conn, cohort)
        b, eb = await add_learner(conn, cohort)
        await add_lessons(
            conn,
            [
                lesson_row(a, ea, due_at=now - timedelta(minutes=5)),
                lesson_row(b, eb, due_at=now - timedelta(minutes=9)),
                lesson_row(a, ea, lesson_id="data", due_at=now + timedelta(hours=1)),  # not due
            ],
        )
        reply = OutboundMessage(ChannelName.SMS, "+1555", "Correct!", "en")
        await enqueue_replies(
            conn, learner_id=b, channel=ChannelName.SMS, messages=[reply], now=now
        )
    async with engine.begin() as conn:
        first = await outbox.claim_batch(
            conn, channel=ChannelName.SMS, token="t1", limit=2, now=now, lease_until=now
        )
        second = await outbox.claim_batch(
            conn, channel=ChannelName.SMS, token="t2", limit=5, now=now, lease_until=now
        )
    assert [(r.kind, r.learner_id) for r in first] == [("reply", b), ("lesson", b)]
    assert [(r.kind, r.learner_id, r.lesson_id) for r in second] == [("lesson", a, "users")]


async def test_an_expired_lease_is_claimed_again(engine: AsyncEngine) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment, due_at=now)])
        claimed = await outbox.claim_batch(
            conn,
            channel=ChannelName.SMS,
            token="dead-process:1",
            limit=10,
            now=now,
            lease_until=now + timedelta(seconds=30),
        )
    assert len(claimed) == 1
    async with engine.begin() as conn:
        assert await outbox.release_expired(conn, now + timedelta(seconds=29)) == 0
        assert await outbox.release_expired(conn, now + timedelta(seconds=31)) == 1
        again = await outbox.claim_batch(
            conn, channel=ChannelName.SMS, token="t2", limit=10, now=now, lease_until=now
        )
    assert [r.id for r in again] == [claimed[0].id]


async def test_a_lesson_is_sent_and_moves_the_enrollment(
    engine: AsyncEngine, dispatcher: Dispatcher, sms: FakeChannel
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment)])
    result = await dispatcher.run_until_idle()
    assert (result.sent, result.messages) == (1, 2)
    assert sms.sent[0].text.startswith("Start with users")
    assert "Where do you start?" in sms.sent[1].text and "2) With the users" in sms.sent[1].text
    [row] = await rows(engine)
    assert (row.status, row.locale, row.attempts) == ("sent", "en", 1)
    assert row.provider_message_id == "fake-2" and row.claimed_by is None
    async with engine.connect() as conn:
        moved = (await conn.execute(select(enrollments))).one()
        logged = (await conn.execute(select(events))).one()
    assert (moved.lesson_id, moved.question_index, moved.attempt) == ("users", 0, 0)
    assert moved.awaiting_since is not None
    assert (logged.type, logged.lesson_id, logged.locale) == ("lesson_delivered", "users", "en")


async def test_retryable_failures_back_off_with_jitter_then_go_dead(
    engine: AsyncEngine, dispatcher: Dispatcher, sms: FakeChannel
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment)])
    sms.fail = lambda m: SendError(SendErrorKind.RETRYABLE, "503 from provider", code="503")
    before = utcnow()
    await dispatcher.run_until_idle()
    [row] = await rows(engine)
    assert (row.status, row.attempts, row.error_code) == ("pending", 1, "503")
    # First retry: base 10 s, jittered to 5-15 s.
    assert before + timedelta(seconds=5) <= row.next_attempt_at <= utcnow() + timedelta(seconds=15)
    assert (await dispatcher.run_until_idle()).claimed == 0  # not yet due
    for attempt in (2, 3):
        async with engine.begin() as conn:
            await conn.execute(update(deliveries).values(next_attempt_at=utcnow()))
        await dispatcher.run_until_idle()
        [row] = await rows(engine)
        assert row.attempts == attempt
    assert row.status == "dead" and row.next_attempt_at is None
    assert sms.sent == []


async def test_retry_after_is_honoured_and_pauses_the_channel(
    engine: AsyncEngine, dialogue: Dialogue, sms: FakeChannel
) -> None:
    paused: list[float] = []

    class Limiter:
        async def acquire(self, address: str, cost: float = 1.0) -> None:
            return None

        def pause(self, seconds: float) -> None:
            paused.append(seconds)

    dispatcher = Dispatcher(
        engine, {ChannelName.SMS: sms}, dialogue, limiters={ChannelName.SMS: Limiter()}
    )
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment)])
    sms.fail = lambda m: SendError(SendErrorKind.RETRYABLE, "429", code="429", retry_after=120)
    before = utcnow()
    await dispatcher.run_until_idle()
    [row] = await rows(engine)
    assert paused == [120]
    assert before + timedelta(seconds=120) <= row.next_attempt_at
    assert row.next_attempt_at <= utcnow() + timedelta(seconds=132)


@pytest.mark.parametrize(
    ("kind", "learner_status", "flag", "stopped_event"),
    [
        (SendErrorKind.OPTED_OUT, "stopped", None, True),
        (SendErrorKind.UNREACHABLE, "unreachable", "unreachable", False),
        (SendErrorKind.FILTERED, "active", "review", False),
        (SendErrorKind.PERMANENT, "active", None, False),
    ],
)
async def test_each_refusal_has_its_effect_on_the_learner(
    engine: AsyncEngine,
    dispatcher: Dispatcher,
    sms: FakeChannel,
    kind: SendErrorKind,
    learner_status: str,
    flag: str | None,
    stopped_event: bool,
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(
            conn,
            [lesson_row(learner, enrollment), lesson_row(learner, enrollment, lesson_id="data")],
        )
    sms.fail = lambda m: SendError(kind, "refused", code="21610")
    result = await dispatcher.run_until_idle()
    assert result.failed >= 1
    first, second = await rows(engine)
    assert (first.status, first.error_code, first.error_detail) == ("failed", "21610", "refused")
    async with engine.connect() as conn:
        person = (await conn.execute(select(learners))).one()
        logged = [e.type for e in (await conn.execute(select(events))).all()]
    assert (person.status, person.flag) == (learner_status, flag)
    assert (EventType.STOPPED.value in logged) is stopped_event
    # A learner who can no longer receive gets no further lessons; the others keep trying.
    assert second.status == ("failed" if learner_status == "active" else "cancelled")


async def test_inactive_learners_get_no_lessons_but_their_replies_go_out(
    engine: AsyncEngine, dispatcher: Dispatcher, sms: FakeChannel
) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        for status in (LearnerStatus.STOPPED, LearnerStatus.PAUSED, LearnerStatus.DELETED):
            learner, enrollment = await add_learner(conn, cohort, status=status)
            await add_lessons(conn, [lesson_row(learner, enrollment)])
        stop_reply = OutboundMessage(ChannelName.SMS, "+1555", "You will not receive...", "en")
        await enqueue_replies(
            conn, learner_id=learner, channel=ChannelName.SMS, messages=[stop_reply], now=now
        )
    result = await dispatcher.run_until_idle()
    assert (result.cancelled, result.sent) == (3, 1)
    assert [m.text for m in sms.sent] == ["You will not receive..."]
    reply = (await rows(engine))[-1]
    assert (reply.status, reply.payload) == ("sent", None)  # the sent text is not kept


async def test_sms_segments_are_counted(
    engine: AsyncEngine, dispatcher: Dispatcher, sms: FakeChannel
) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, _ = await add_learner(conn, cohort)
        long = OutboundMessage(ChannelName.SMS, "+1555", "word " * 100, "en")
        await enqueue_replies(
            conn, learner_id=learner, channel=ChannelName.SMS, messages=[long], now=now
        )
    await dispatcher.run_until_idle()
    [row] = await rows(engine)
    assert row.segments == sum(m.segments for m in sms.sent) == 4
    assert all(m.segments <= 3 for m in sms.sent)


async def test_a_reminder_repeats_the_open_question_and_leaves_the_enrollment(
    engine: AsyncEngine, dispatcher: Dispatcher, sms: FakeChannel
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        asked = utcnow() - timedelta(hours=30)
        await conn.execute(
            update(enrollments)
            .where(enrollments.c.id == enrollment)
            .values(lesson_id="data", question_index=0, awaiting_since=asked, reminders_sent=1)
        )
        reminder = lesson_row(learner, enrollment, lesson_id=reminder_key("data", 1, asked))
        await add_lessons(conn, [{**reminder, "kind": DeliveryKind.REMINDER.value}])
    result = await dispatcher.run_until_idle()
    assert result.sent == 1
    [message] = sms.sent
    assert message.text.startswith("A reminder: this question is waiting for your answer.")
    assert "Collect all." in message.text
    async with engine.connect() as conn:
        kept = (await conn.execute(select(enrollments))).one()
        logged = (await conn.execute(select(events))).all()
    assert (kept.lesson_id, kept.question_index, kept.reminders_sent) == ("data", 0, 1)
    assert kept.awaiting_since == asked and logged == []


async def test_a_reminder_for_an_answered_question_is_cancelled(
    engine: AsyncEngine, dispatcher: Dispatcher, sms: FakeChannel
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        reminder = lesson_row(learner, enrollment, lesson_id=reminder_key("data", 1, utcnow()))
        await add_lessons(conn, [{**reminder, "kind": DeliveryKind.REMINDER.value}])
    await dispatcher.run_until_idle()
    assert sms.sent == []
    [row] = await rows(engine)
    assert row.status == "cancelled"


async def test_the_loop_sends_batch_after_batch_and_writes_the_last_one_when_stopped(
    engine: AsyncEngine, dialogue: Dialogue, sms: FakeChannel
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learners_ = [await add_learner(conn, cohort) for _ in range(5)]
        await add_lessons(
            conn, [lesson_row(learner, enrollment) for learner, enrollment in learners_]
        )
    # Batches of 2: each batch is written back while the next one is sent.
    dispatcher = Dispatcher(engine, {ChannelName.SMS: sms}, dialogue, batch_size=2)
    running = asyncio.create_task(dispatcher.run_forever(idle_seconds=0.05))
    while len(sms.sent) < 10:
        await asyncio.sleep(0.01)
    dispatcher.stop()
    await running

    assert [row.status for row in await rows(engine)] == ["sent"] * 5
    async with engine.connect() as conn:
        logged = (await conn.execute(select(events))).all()
    assert len(logged) == 5


async def test_a_failed_claim_still_writes_back_the_batch_already_sent(
    engine: AsyncEngine, dialogue: Dialogue, sms: FakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        pairs = [await add_learner(conn, cohort) for _ in range(2)]
        await add_lessons(conn, [lesson_row(learner, enrollment) for learner, enrollment in pairs])
    real_claim = outbox.claim_batch
    claims: list[int] = []

    async def claim_then_fail(*args: Any, **kwargs: Any) -> list[outbox.ClaimedRow]:
        claims.append(1)
        if len(claims) == 2:  # the claim made while the first batch waits to be written
            raise ConnectionError("the database went away")
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(outbox, "claim_batch", claim_then_fail)
    dispatcher = Dispatcher(engine, {ChannelName.SMS: sms}, dialogue, batch_size=1)

    with pytest.raises(ConnectionError):
        await dispatcher.run_until_idle()

    assert [row.status for row in await rows(engine)] == ["sent", "pending"]
    assert len(sms.sent) == 2  # the first lesson's two messages, recorded as sent
