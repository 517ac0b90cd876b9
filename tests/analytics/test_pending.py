"""What waits in the outbox and why: one reason per row, grouped by channel, pseudonymised."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.pending import NO_TEMPLATE_DETAIL, Reason, pending_deliveries
from bot.domain import ChannelName
from bot.store.db import utcnow
from scheduler import dispatcher
from tests.scheduler.outbox_rows import add_cohort, add_learner, add_lessons, lesson_row

SECRET = "a-test-secret-of-16+"


async def test_each_waiting_delivery_gets_its_reason(engine: AsyncEngine) -> None:
    now = utcnow()
    later = now + timedelta(hours=3)
    retry_at = now + timedelta(seconds=90)
    rows: list[dict[str, Any]] = []
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        other = await add_cohort(conn)

        async def row(
            channel: ChannelName, cohort_id: int = cohort, **values: Any
        ) -> dict[str, Any]:
            learner, enrollment = await add_learner(conn, cohort_id, channel=channel)
            due = {"due_at": now - timedelta(seconds=1)}
            found = {**lesson_row(learner, enrollment, channel=channel), **due, **values}
            await add_lessons(conn, [found])  # one by one: the rows set different columns
            rows.append(found)
            return found

        await row(ChannelName.SMS)  # SMS is not configured below
        await row(ChannelName.SMS, due_at=later)  # not configured wins over "later"
        await row(ChannelName.WHATSAPP, status="held", error_detail="held: a template waits")
        await row(
            ChannelName.WHATSAPP,
            status="held",
            error_detail="no WhatsApp template for the learner's locale",
        )
        await row(ChannelName.TELEGRAM, due_at=later)
        await row(ChannelName.TELEGRAM, attempts=1, next_attempt_at=retry_at, error_code="429")
        await row(
            ChannelName.TELEGRAM,
            attempts=2,
            next_attempt_at=retry_at,
            error_code="retryable",
            error_detail="timed out",
        )
        await row(ChannelName.TELEGRAM, status="sending", claimed_until=now + timedelta(seconds=30))
        await row(ChannelName.TELEGRAM, status="sending", claimed_until=now - timedelta(1))
        await row(ChannelName.TELEGRAM, due_at=now - timedelta(minutes=5))
        await row(ChannelName.TELEGRAM, status="sent")  # sent: not listed
        await row(ChannelName.TELEGRAM, other)  # another cohort
        groups = await pending_deliveries(
            conn,
            secret_key=SECRET,
            configured={"telegram", "whatsapp", "sandbox"},
            now=now,
            cohort_ids=[cohort],
        )
    summary = [(g.channel, g.reason, g.error, g.count, g.first_at) for g in groups]
    assert summary == [
        ("sms", Reason.NOT_CONFIGURED, "", 2, None),
        ("telegram", Reason.LATER, "", 1, later),
        ("telegram", Reason.RATE_LIMITED, "429", 1, retry_at),
        ("telegram", Reason.RETRYING, "retryable timed out", 1, retry_at),
        ("telegram", Reason.SENDING, "", 1, None),
        # The expired lease is due again; the oldest due counts from its due time.
        ("telegram", Reason.DUE, "", 2, now - timedelta(minutes=5)),
        ("whatsapp", Reason.NO_TEMPLATE, "", 1, None),
        ("whatsapp", Reason.WHATSAPP_REPLY, "", 1, None),
    ]
    learners = [row.learner for group in groups for row in group.rows]
    assert all(len(name) == 16 and "+" not in name for name in learners)


async def test_a_push_filter_and_every_cohort(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        learner, enrollment = await add_learner(conn, cohort)
        await add_lessons(conn, [lesson_row(learner, enrollment)])
        everything = await pending_deliveries(
            conn, secret_key=SECRET, configured={"sms"}, now=utcnow()
        )
        pushed = await pending_deliveries(
            conn, secret_key=SECRET, configured={"sms"}, now=utcnow(), push_id=1
        )
    assert [(g.reason, g.count) for g in everything] == [(Reason.DUE, 1)]
    assert pushed == []


def test_the_dispatcher_still_holds_with_the_words_the_listing_looks_for() -> None:
    assert f'"{NO_TEMPLATE_DETAIL} for the learner' in inspect.getsource(dispatcher)
