"""Provider status callbacks written to the outbox: forward only, with the failure policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.channels.base import SendErrorKind
from bot.domain import ChannelName, DeliveryStatus
from bot.store import deliveries as delivery_policy
from bot.store.tables import deliveries, learners

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
) -> StatusOutcome:
    """Move the delivery with this provider id forward to `status`; apply `failure` if given."""
    if status not in CALLBACK_STATUSES:
        raise ValueError(f"not a provider status: {status}")
    found = (
        await conn.execute(
            select(deliveries.c.id, deliveries.c.learner_id).where(
                deliveries.c.provider_message_id == provider_message_id
            )
        )
    ).first()
    if found is None:
        # A direct reply has no outbox row, or the dispatcher has not written the SID yet:
        # the learner still gets the policy (an unreachable number stays unreachable).
        if failure is None or address is None:
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
    # The status guard is in the WHERE clause so two callbacks racing cannot go backwards.
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.status.in_(statuses_before(status)),
        )
        .values(**values)
    )
    updated = result.rowcount == 1
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
