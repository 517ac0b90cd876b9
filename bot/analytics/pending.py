"""What is waiting in the outbox, and why: `learnbot outbox pending` and a stalled push.

Every row not yet sent (pending, sending, held) gets one reason, the first that applies:
its channel is not configured (nothing will ever claim it), it waits for the learner's
WhatsApp reply, it is scheduled for later, it waits out a provider's rate limit or a retry's
backoff, a dispatcher is sending it, or it is due and in line at the channel's rate.
Learners appear by keyed pseudonym only, as in `outbox failed`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.pseudonym import pseudonym
from bot.domain import DeliveryStatus
from bot.store.tables import deliveries, enrollments, learners

NOT_SENT = (
    DeliveryStatus.PENDING.value,
    DeliveryStatus.SENDING.value,
    DeliveryStatus.HELD.value,
)
RATE_LIMIT_CODES = frozenset({"429", "20429"})  # Telegram's RetryAfter, Twilio's too-many
# The dispatcher's words for a lesson held with no approved template to announce it
# (scheduler.dispatcher; tests/analytics/test_pending.py checks they still match).
NO_TEMPLATE_DETAIL = "no WhatsApp template"


class Reason(StrEnum):
    """Why a delivery is not sent yet, in the order they are tried."""

    NOT_CONFIGURED = "not_configured"
    NO_TEMPLATE = "no_template"
    WHATSAPP_REPLY = "whatsapp_reply"
    LATER = "later"
    RATE_LIMITED = "rate_limited"
    RETRYING = "retrying"
    SENDING = "sending"
    DUE = "due"


@dataclass(frozen=True, slots=True)
class PendingRow:
    """One delivery not sent yet."""

    id: int
    learner: str  # keyed pseudonym
    channel: str
    lesson_id: str
    kind: str
    reason: Reason
    at: datetime | None  # due (later), next attempt (retry), or due since (due)
    error: str


@dataclass(slots=True)
class PendingGroup:
    """The rows of one channel waiting for one reason (and one error, for retries)."""

    channel: str
    reason: Reason
    error: str
    rows: list[PendingRow] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many deliveries wait so."""
        return len(self.rows)

    @property
    def first_at(self) -> datetime | None:
        """The earliest time of the group: next due, next try, or the oldest due."""
        times = [row.at for row in self.rows if row.at is not None]
        return min(times) if times else None


def classify(row: Any, configured: Collection[str], now: datetime) -> tuple[Reason, Any]:
    """The reason a not-yet-sent delivery waits, and the time that goes with it."""
    if row.channel not in configured:
        return Reason.NOT_CONFIGURED, None
    if row.status == DeliveryStatus.HELD.value:
        if (row.error_detail or "").startswith(NO_TEMPLATE_DETAIL):
            return Reason.NO_TEMPLATE, None
        return Reason.WHATSAPP_REPLY, None
    if row.status == DeliveryStatus.SENDING.value and (
        row.claimed_until is not None and row.claimed_until > now
    ):
        return Reason.SENDING, None
    if row.due_at > now:
        return Reason.LATER, row.due_at
    if row.next_attempt_at is not None and row.next_attempt_at > now:
        if row.error_code in RATE_LIMIT_CODES:
            return Reason.RATE_LIMITED, row.next_attempt_at
        return Reason.RETRYING, row.next_attempt_at
    return Reason.DUE, row.due_at


async def pending_deliveries(
    conn: AsyncConnection,
    *,
    secret_key: str,
    configured: Collection[str],
    now: datetime,
    cohort_ids: Collection[int] | None = None,
    push_id: int | None = None,
) -> list[PendingGroup]:
    """Not-yet-sent deliveries grouped by channel, reason and error; `cohort_ids` None: all."""
    query = (
        select(
            deliveries.c.id,
            deliveries.c.channel,
            deliveries.c.lesson_id,
            deliveries.c.kind,
            deliveries.c.status,
            deliveries.c.due_at,
            deliveries.c.next_attempt_at,
            deliveries.c.claimed_until,
            deliveries.c.error_code,
            deliveries.c.error_detail,
            learners.c.learner_key,
        )
        .select_from(
            deliveries.join(learners, learners.c.id == deliveries.c.learner_id).outerjoin(
                enrollments, enrollments.c.id == deliveries.c.enrollment_id
            )
        )
        .where(deliveries.c.status.in_(NOT_SENT))
        .order_by(deliveries.c.id)
    )
    if cohort_ids is not None:
        query = query.where(enrollments.c.cohort_id.in_(sorted(cohort_ids)))
    if push_id is not None:
        query = query.where(deliveries.c.push_id == push_id)
    groups: dict[tuple[str, Reason, str], PendingGroup] = {}
    for row in await conn.execute(query):
        reason, at = classify(row, configured, now)
        error = ""
        if reason in (Reason.RETRYING, Reason.RATE_LIMITED):
            error = " ".join(filter(None, (row.error_code, (row.error_detail or "")[:80])))
        key = (str(row.channel), reason, error)
        group = groups.get(key)
        if group is None:
            group = groups[key] = PendingGroup(str(row.channel), reason, error)
        group.rows.append(
            PendingRow(
                id=int(row.id),
                learner=pseudonym(secret_key, row.learner_key),
                channel=str(row.channel),
                lesson_id=str(row.lesson_id),
                kind=str(row.kind),
                reason=reason,
                at=at,
                error=error,
            )
        )
    order = list(Reason)
    return sorted(groups.values(), key=lambda g: (g.channel, order.index(g.reason), g.error))
