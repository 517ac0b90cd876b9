"""Outbox rows outside the dispatcher: replies enqueued by a turn, held lessons, failure policy.

The failure policy (`apply_failure`) is shared by the dispatcher and provider status
callbacks, so a refusal means the same thing whenever the provider reports it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.channels.base import SendErrorKind
from bot.domain import (
    Button,
    ChannelName,
    DeliveryKind,
    DeliveryStatus,
    EventType,
    Image,
    LearnerStatus,
    OutboundMessage,
)
from bot.store.events import EventRow, append_events
from bot.store.fastpath import hot
from bot.store.repository import Db
from bot.store.tables import deliveries, learners

REPLY_PRIORITY = 0  # a reply to the learner's own message goes before bulk sends
LESSON_PRIORITY = 1
FLAG_UNREACHABLE = "unreachable"
FLAG_REVIEW = "review"

_INSERT = hot(deliveries.insert())
_REQUEUE_HELD = (
    deliveries.update()
    .where(
        deliveries.c.learner_id == bindparam("learner_id_"),
        deliveries.c.status == DeliveryStatus.HELD.value,
    )
    .values(
        status=DeliveryStatus.PENDING.value,
        next_attempt_at=None,
        due_at=bindparam("now_"),
        updated_at=bindparam("now_"),
    )
)


# --- payloads --------------------------------------------------------------------------------


def encode_messages(messages: Sequence[OutboundMessage]) -> list[dict[str, Any]]:
    """Channel-neutral messages as JSON-ready dicts (a delivery's payload)."""
    return [
        {
            "channel": str(m.channel),
            "address": m.address,
            "text": m.text,
            "locale": m.locale,
            "buttons": [[b.label, b.payload] for b in m.buttons],
            "image": None if m.image is None else [m.image.url, m.image.alt],
            "numbered": m.numbered,
            "is_reply": m.is_reply,
            "meta": dict(m.meta),
        }
        for m in messages
    ]


def decode_messages(payload: Sequence[Mapping[str, Any]]) -> list[OutboundMessage]:
    """The messages of a delivery's payload (inverse of `encode_messages`)."""
    return [
        OutboundMessage(
            channel=ChannelName(item["channel"]),
            address=item["address"],
            text=item["text"],
            locale=item["locale"],
            buttons=tuple(Button(label, data) for label, data in item.get("buttons", ())),
            image=None if item.get("image") is None else Image(*item["image"]),
            numbered=bool(item.get("numbered", True)),
            is_reply=bool(item.get("is_reply", True)),
            meta=dict(item.get("meta") or {}),
        )
        for item in payload
    ]


# --- replies ---------------------------------------------------------------------------------


def reply_row(
    *, learner_id: int, channel: ChannelName, messages: Sequence[OutboundMessage], now: datetime
) -> dict[str, Any]:
    """The outbox row carrying one turn's replies, due now, before every bulk send."""
    return {
        "learner_id": learner_id,
        "enrollment_id": None,
        "lesson_id": f"reply:{uuid.uuid4()}",  # unique: replies never collide with each other
        "kind": DeliveryKind.REPLY.value,
        "channel": str(channel),
        "status": DeliveryStatus.PENDING.value,
        "priority": REPLY_PRIORITY,
        "locale": messages[0].locale if messages else None,
        "payload": encode_messages(messages),
        "due_at": now,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


async def enqueue_replies(
    conn: Db,
    *,
    learner_id: int,
    channel: ChannelName,
    messages: Sequence[OutboundMessage],
    now: datetime,
) -> None:
    """Insert one turn's replies into the outbox, inside the caller's (the turn's) transaction."""
    if messages:
        await conn.execute(
            _INSERT, reply_row(learner_id=learner_id, channel=channel, messages=messages, now=now)
        )


async def requeue_held(conn: Db, learner_id: int, now: datetime) -> int:
    """Release the learner's lessons held outside the WhatsApp window (they replied): the count."""
    result = await conn.execute(_REQUEUE_HELD, {"learner_id_": learner_id, "now_": now})
    return int(result.rowcount)


# --- failure policy --------------------------------------------------------------------------


async def apply_failure(
    conn: Db,
    *,
    learner_id: int,
    delivery_id: int | None,
    kind: SendErrorKind,
    code: str | None,
    detail: str,
    now: datetime,
) -> None:
    """What a provider's refusal means for the learner and the delivery, in the caller's tx.

    opted_out: the learner is stopped (a `stopped` event); unreachable: status unreachable and
    flagged; filtered: flagged for review; window_closed: the delivery is held until the
    learner writes; permanent and retryable (reported after the fact): the delivery failed.
    """
    learner_values: dict[str, Any] = {}
    if kind == SendErrorKind.OPTED_OUT:
        learner_values = {"status": LearnerStatus.STOPPED.value}
    elif kind == SendErrorKind.UNREACHABLE:
        learner_values = {"status": LearnerStatus.UNREACHABLE.value, "flag": FLAG_UNREACHABLE}
    elif kind == SendErrorKind.FILTERED:
        learner_values = {"flag": FLAG_REVIEW}
    if learner_values:
        row = (
            await conn.execute(
                select(learners.c.learner_key, learners.c.channel, learners.c.status).where(
                    learners.c.id == learner_id
                )
            )
        ).first()
        if row is not None and row.status != LearnerStatus.DELETED.value:
            await conn.execute(
                learners.update()
                .where(learners.c.id == learner_id)
                .values(**learner_values, updated_at=now)
            )
            if kind == SendErrorKind.OPTED_OUT and row.status != LearnerStatus.STOPPED.value:
                stopped = EventRow(
                    type=EventType.STOPPED,
                    learner_key=row.learner_key,
                    channel=row.channel,
                    occurred_at=now,
                    detail={"by": "provider", "code": code},
                )
                # append_events only awaits execute(), which every Db has.
                await append_events(cast(AsyncConnection, conn), [stopped])
    if delivery_id is not None:
        held = kind == SendErrorKind.WINDOW_CLOSED
        status = DeliveryStatus.HELD if held else DeliveryStatus.FAILED
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id)
            .values(
                status=status.value,
                error_code=code or str(kind),
                error_detail=detail[:2000],
                claimed_by=None,
                claimed_until=None,
                updated_at=now,
            )
        )
