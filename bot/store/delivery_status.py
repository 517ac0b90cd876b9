"""Provider status callbacks written to the outbox: forward only, with the failure policy.

WhatsApp's 63016 (outside the 24-hour window) often arrives here rather than as the send's
answer: Twilio accepts the lesson, then reports it undelivered. Such a lesson goes back to the
outbox, due now, with the learner's window marked closed: the dispatcher then takes the same
path as for a synchronous 63016 (send the approved template, hold the lesson until the learner
replies), so the decision and the once-per-lesson template row live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.channels.base import SendErrorKind
from bot.domain import ChannelName, DeliveryKind, DeliveryStatus
from bot.store import deliveries as delivery_policy
from bot.store.tables import deliveries, enrollments, learners

# How far along a message is. A callback may only move a delivery to a higher rank: Twilio does
# not promise order, and a late "sent" must not undo "delivered".
_RANK: dict[DeliveryStatus, int] = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.SENDING: 0,
    DeliveryStatus.QUEUED: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.UNDELIVERED: 3,
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.READ: 4,
}
# Nothing a provider says later revives these.
_FINAL = frozenset(
    {
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.DEAD,
        DeliveryStatus.CANCELLED,
    }
)
CALLBACK_STATUSES = frozenset(
    {
        DeliveryStatus.QUEUED,
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.READ,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class StatusOutcome:
    """What a status callback changed."""

    delivery_id: int | None  # the delivery found by provider message id, if any
    updated: bool  # the status moved forward
    failure_applied: bool  # the failure policy ran for the error code
    requeued: bool = False  # a lesson went back to the outbox: wake the dispatcher


# Only a message the provider accepted can be refused for the window. These are the states of
# a lesson a 63016 callback put back in the outbox (until the dispatcher holds it): excluding
# them makes a repeated callback a no-op.
_IN_OUTBOX = (str(DeliveryStatus.PENDING), str(DeliveryStatus.SENDING))
_WINDOW_DETAIL = "status callback: outside the WhatsApp window, the template goes first"
# A partly sent delivery's resume point (deliveries.parts_sent, migration 0005) and the segments
# counted with it: the learner got none of a refused lesson, so it goes out whole.
_RESTART = {"parts_sent": 0, "segments": None}


def statuses_before(status: DeliveryStatus) -> list[str]:
    """The statuses a delivery may leave for `status` (lower rank, not final)."""
    rank = _RANK[status]
    return [str(s) for s, r in _RANK.items() if r < rank and s not in _FINAL]


async def record_status(
    conn: AsyncConnection,
    *,
    provider_message_id: str,
    status: DeliveryStatus,
    error_code: str | None,
    failure: SendErrorKind | None,
    channel: ChannelName,
    address: str | None,
    now: datetime,
    unmatched_policy: bool = True,
) -> StatusOutcome:
    """Move the delivery with this provider id forward to `status`; apply `failure` if given.

    `unmatched_policy`: with no delivery of that id, still apply `failure` to the learner at
    `address` (False while the caller will look again: the SID may not be written yet).
    """
    if status not in CALLBACK_STATUSES:
        raise ValueError(f"not a provider status: {status}")
    found = (
        await conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.learner_id,
                deliveries.c.enrollment_id,
                deliveries.c.lesson_id,
                deliveries.c.kind,
                deliveries.c.channel,
                deliveries.c.sent_at,
            ).where(deliveries.c.provider_message_id == provider_message_id)
        )
    ).first()
    if found is None:
        # A direct reply has no outbox row, or the dispatcher has not written the SID yet:
        # the learner still gets the policy (an unreachable number stays unreachable).
        if failure is None or address is None or not unmatched_policy:
            return StatusOutcome(None, updated=False, failure_applied=False)
        learner_id = (
            await conn.execute(
                select(learners.c.id).where(
                    learners.c.channel == str(channel), learners.c.address == address
                )
            )
        ).scalar()
        if learner_id is None:
            return StatusOutcome(None, updated=False, failure_applied=False)
        await _apply(conn, learner_id, None, failure, error_code, status, now)
        return StatusOutcome(None, updated=False, failure_applied=True)
    delivery_id, learner_id = int(found.id), int(found.learner_id)
    values: dict[str, object] = {"status": str(status), "updated_at": now}
    if error_code is not None:
        values["error_code"] = error_code
    window = failure == SendErrorKind.WINDOW_CLOSED
    allowed = statuses_before(status)
    if window:
        allowed = [s for s in allowed if s not in _IN_OUTBOX]
    # The status guard is in the WHERE clause so two callbacks racing cannot go backwards.
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status.in_(allowed))
        .values(**values)
    )
    updated = result.rowcount == 1
    if updated and window and found.channel == str(ChannelName.WHATSAPP):
        requeued = await _outside_window(conn, found, error_code, status, now)
        return StatusOutcome(delivery_id, updated=True, failure_applied=True, requeued=requeued)
    if updated and failure is not None:
        await _apply(conn, learner_id, delivery_id, failure, error_code, status, now)
        if status == DeliveryStatus.UNDELIVERED and failure != SendErrorKind.WINDOW_CLOSED:
            # The policy marks the delivery failed; keep the provider's finer word for it.
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status=str(DeliveryStatus.UNDELIVERED))
            )
    return StatusOutcome(delivery_id, updated=updated, failure_applied=updated and bool(failure))


async def _apply(
    conn: AsyncConnection,
    learner_id: int,
    delivery_id: int | None,
    failure: SendErrorKind,
    error_code: str | None,
    status: DeliveryStatus,
    now: datetime,
) -> None:
    await delivery_policy.apply_failure(
        conn,
        learner_id=learner_id,
        delivery_id=delivery_id,
        kind=failure,
        code=error_code,
        detail=f"status callback: {status}",
        now=now,
    )


async def _outside_window(
    conn: AsyncConnection,
    found: Any,  # the delivery row read by record_status
    error_code: str | None,
    status: DeliveryStatus,
    now: datetime,
) -> bool:
    """A WhatsApp message refused for the window: whether its lesson went back to the outbox.

    The learner's window is marked closed, unless they wrote since the message was sent (the
    callback is late). A lesson goes back to the outbox for the dispatcher to announce with the
    template, unless a template already waits for the learner's reply: then it is held, and
    follows that reply with the others. A reply or a template itself stays failed as reported
    (a stale reply is not worth a template, and a template must not beget one).
    """
    learner_id, delivery_id, kind = int(found.learner_id), int(found.id), found.kind
    # On PostgreSQL the learner's row lock orders two callbacks for one learner, so only the
    # first sees no template waiting.
    last_inbound_at = (
        await conn.execute(
            select(learners.c.last_inbound_at).where(learners.c.id == learner_id).with_for_update()
        )
    ).scalar()
    sent_at = found.sent_at
    if last_inbound_at is None or sent_at is None or last_inbound_at <= sent_at:
        await conn.execute(
            update(learners).where(learners.c.id == learner_id).values(last_inbound_at=None)
        )
    if kind in (DeliveryKind.REPLY, DeliveryKind.TEMPLATE):
        return False
    if kind == DeliveryKind.LESSON and found.enrollment_id is not None:
        await _unsend(conn, int(found.enrollment_id), delivery_id, found.lesson_id)
    if kind != DeliveryKind.LESSON or await template_awaits_reply(conn, learner_id, delivery_id):
        await _apply(
            conn,
            learner_id,
            delivery_id,
            SendErrorKind.WINDOW_CLOSED,
            error_code,
            status,
            now,
        )
        return False
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=str(DeliveryStatus.PENDING),
            due_at=now,
            next_attempt_at=None,
            error_code=error_code,
            error_detail=_WINDOW_DETAIL,
            claimed_by=None,
            claimed_until=None,
            updated_at=now,
        )
    )
    return True


async def _unsend(
    conn: AsyncConnection, enrollment_id: int, delivery_id: int, lesson_id: str
) -> None:
    """Take back what the dispatcher wrote when the refused lesson "went out".

    The learner saw none of it. Its parts count as unsent, so it goes out whole when released.
    Its question is no longer open: their "1" to the template would be graded as its answer,
    and reminders would ask it (unless they answered something since). The enrollment stays
    on the lesson, so the planner goes on after it as for a lesson held by the dispatcher.
    """
    await conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(_RESTART))
    await conn.execute(
        update(enrollments)
        .where(
            enrollments.c.id == enrollment_id,
            enrollments.c.lesson_id == lesson_id,
            enrollments.c.question_index == 0,
            enrollments.c.attempt == 0,
        )
        .values(question_index=None, awaiting_since=None, reminders_sent=0)
    )


async def template_awaits_reply(conn: AsyncConnection, learner_id: int, delivery_id: int) -> bool:
    """Whether a template already went, or is about to go, to the learner and is unanswered.

    The dispatcher records the template it sends for a held lesson under the lesson's key, and
    the learner's next message releases every held row: a held row with a template is one not
    yet answered. A lesson requeued by an earlier 63016 callback is about to send its own.
    """
    template = deliveries.alias("template")
    announced = (
        exists()
        .where(
            template.c.enrollment_id == deliveries.c.enrollment_id,
            template.c.lesson_id == deliveries.c.lesson_id,
            template.c.kind == str(DeliveryKind.TEMPLATE),
        )
        .correlate(deliveries)
    )
    waiting = or_(
        (deliveries.c.status == str(DeliveryStatus.HELD)) & announced,
        deliveries.c.status.in_(_IN_OUTBOX) & (deliveries.c.error_detail == _WINDOW_DETAIL),
    )
    others = deliveries.c.learner_id == learner_id, deliveries.c.id != delivery_id
    return bool((await conn.execute(select(exists().where(*others, waiting)))).scalar())
