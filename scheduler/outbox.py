"""The outbox's statements for the dispatcher: claim a batch under a lease, write results back.

A claim marks rows `sending` with a lease (`claimed_by`, `claimed_until`) in one statement:
on PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED`, so several processes claim
disjoint batches; on SQLite the single statement holds the one write lock. A process that
dies leaves its rows `sending` until their lease expires; `release_expired` makes them
pending again, so nothing is lost (a message in flight at the kill may be sent twice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import ChannelName, DeliveryKind, DeliveryStatus
from bot.store.tables import deliveries, enrollments, learners

PENDING = DeliveryStatus.PENDING.value
SENDING = DeliveryStatus.SENDING.value


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A claimed delivery with what the dispatcher needs of its learner and enrollment."""

    id: int
    learner_id: int
    enrollment_id: int | None
    lesson_id: str
    kind: str
    channel: ChannelName
    priority: int
    payload: list[dict[str, Any]] | None
    attempts: int
    learner_key: str
    address: str | None
    learner_locale: str | None
    learner_status: str
    last_inbound_at: datetime | None
    course_id: str | None
    cohort_id: int | None
    open_lesson_id: str | None = None  # the enrollment's open question, for reminders
    question_index: int | None = None

    @property
    def is_reply(self) -> bool:
        """A reply to the learner's own message (ready-made payload)."""
        return self.kind == DeliveryKind.REPLY.value


def _claim(postgres: bool) -> Any:
    due = bindparam("now_", type_=deliveries.c.due_at.type)
    picked = (
        select(deliveries.c.id)
        .where(
            deliveries.c.status == PENDING,
            deliveries.c.channel == bindparam("channel_"),
            deliveries.c.due_at <= due,
            or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= due),
        )
        .order_by(deliveries.c.priority, deliveries.c.due_at, deliveries.c.id)
        .limit(bindparam("limit_"))
    )
    if postgres:
        # Rows another process is claiming right now are skipped, not waited for.
        picked = picked.with_for_update(skip_locked=True)
    return (
        deliveries.update()
        .where(deliveries.c.id.in_(picked.scalar_subquery()))
        .values(
            status=SENDING,
            claimed_by=bindparam("token_"),
            claimed_until=bindparam("until_", type_=deliveries.c.claimed_until.type),
            updated_at=due,
        )
    )


_CLAIM = {postgres: _claim(postgres) for postgres in (False, True)}
_CLAIMED = (
    select(
        deliveries.c.id,
        deliveries.c.learner_id,
        deliveries.c.enrollment_id,
        deliveries.c.lesson_id,
        deliveries.c.kind,
        deliveries.c.channel,
        deliveries.c.priority,
        deliveries.c.payload,
        deliveries.c.attempts,
        learners.c.learner_key,
        learners.c.address,
        learners.c.locale,
        learners.c.status.label("learner_status"),
        learners.c.last_inbound_at,
        enrollments.c.course_id,
        enrollments.c.cohort_id,
        enrollments.c.lesson_id.label("open_lesson_id"),
        enrollments.c.question_index,
    )
    .select_from(
        deliveries.join(learners, learners.c.id == deliveries.c.learner_id).outerjoin(
            enrollments, enrollments.c.id == deliveries.c.enrollment_id
        )
    )
    .where(deliveries.c.status == SENDING, deliveries.c.claimed_by == bindparam("token_"))
    .order_by(deliveries.c.priority, deliveries.c.due_at, deliveries.c.id)
)
_RELEASE = (
    deliveries.update()
    .where(
        deliveries.c.status == SENDING,
        deliveries.c.claimed_until < bindparam("now_", type_=deliveries.c.claimed_until.type),
    )
    .values(status=PENDING, claimed_by=None, claimed_until=None)
)
_SENT = (
    deliveries.update()
    .where(deliveries.c.id == bindparam("id_"))
    .values(
        status=DeliveryStatus.SENT.value,
        provider_message_id=bindparam("provider_message_id"),
        segments=bindparam("segments"),
        locale=bindparam("locale"),
        sent_at=bindparam("sent_at"),
        updated_at=bindparam("sent_at"),
        attempts=bindparam("attempts"),
        # A sent reply's text (and the address inside it) is not kept: the learner has it.
        payload=None,
        error_code=None,
        error_detail=None,
        claimed_by=None,
        claimed_until=None,
    )
)
_SETTLE = (
    deliveries.update()
    .where(deliveries.c.id == bindparam("id_"))
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        next_attempt_at=bindparam("next_attempt_at"),
        error_code=bindparam("error_code"),
        error_detail=bindparam("error_detail"),
        updated_at=bindparam("updated_at"),
        claimed_by=None,
        claimed_until=None,
    )
)
_ENROLLMENT = (
    enrollments.update()
    .where(enrollments.c.id == bindparam("id_"))
    .values(
        course_id=bindparam("course_id"),
        lesson_id=bindparam("lesson_id"),
        question_index=bindparam("question_index"),
        attempt=bindparam("attempt"),
        reminders_sent=bindparam("reminders_sent"),
        awaiting_since=bindparam("awaiting_since"),
    )
)


def _row(row: Any) -> ClaimedRow:
    return ClaimedRow(
        id=row.id,
        learner_id=row.learner_id,
        enrollment_id=row.enrollment_id,
        lesson_id=row.lesson_id,
        kind=row.kind,
        channel=ChannelName(row.channel),
        priority=row.priority,
        payload=row.payload,
        attempts=row.attempts,
        learner_key=row.learner_key,
        address=row.address,
        learner_locale=row.locale,
        learner_status=row.learner_status,
        last_inbound_at=row.last_inbound_at,
        course_id=row.course_id,
        cohort_id=row.cohort_id,
        open_lesson_id=row.open_lesson_id,
        question_index=row.question_index,
    )


async def claim_batch(
    conn: AsyncConnection,
    *,
    channel: ChannelName,
    token: str,
    limit: int,
    now: datetime,
    lease_until: datetime,
) -> list[ClaimedRow]:
    """Mark up to `limit` due rows of a channel `sending` under `token`; them, in send order."""
    statement = _CLAIM[conn.dialect.name == "postgresql"]
    values = {
        "channel_": str(channel),
        "now_": now,
        "limit_": limit,
        "token_": token,
        "until_": lease_until,
    }
    claimed = await conn.execute(statement, values)
    if not claimed.rowcount:
        return []
    result = await conn.execute(_CLAIMED, {"token_": token})
    return [_row(row) for row in result]


async def release_expired(conn: AsyncConnection, now: datetime) -> int:
    """Make rows whose lease expired (their process died) pending again: the count."""
    result = await conn.execute(_RELEASE, {"now_": now})
    return int(result.rowcount)


async def mark_sent(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record sent rows (id_, provider_message_id, segments, locale, sent_at, attempts)."""
    if rows:
        await conn.execute(_SENT, list(rows))


async def settle(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Set status, attempts, next_attempt_at and error of rows, releasing their lease."""
    if rows:
        await conn.execute(_SETTLE, list(rows))


async def update_enrollments(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Move enrollments onto the lessons just sent (id_ and the enrollment columns)."""
    if rows:
        await conn.execute(_ENROLLMENT, list(rows))


async def record_templates(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert the WhatsApp template deliveries sent in place of held lessons (once each)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(deliveries).on_conflict_do_nothing(
        index_elements=["enrollment_id", "lesson_id", "kind"]
    )
    await conn.execute(statement, list(rows))
