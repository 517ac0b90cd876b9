"""The outbox's statements for the dispatcher: claim a batch under a lease, write results back.

A claim marks rows `sending` with a lease (`claimed_by`, `claimed_until`): on PostgreSQL
in one round trip (`UPDATE ... RETURNING` in a CTE joined to the learner and enrollment),
with the rows picked `FOR UPDATE SKIP LOCKED`, so several processes claim disjoint batches;
on SQLite the claim's single UPDATE holds the one write lock, and a SELECT reads the rows.
While a batch is being sent its lease is renewed (`renew_lease`), so a slow batch is never
taken for a dead process's. A process that dies leaves its rows `sending` until their lease
expires; `release_expired` makes them pending again, so nothing is lost (a message in flight
at the kill may be sent twice).

Write-backs take columns (one list per column, one entry per row). On PostgreSQL each kind
of write is one statement over `unnest` of arrays, so a batch of 1,000 costs one parameter
set instead of 1,000 (SQLAlchemy's per-row parameter processing was most of the write time);
SQLite's executemany is cheap and is kept.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, exists, func, or_, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import TextClause

from bot.domain import ChannelName, DeliveryKind, DeliveryStatus
from bot.store.events import EventRow, append_events
from bot.store.tables import deliveries, enrollments, learners

PENDING = DeliveryStatus.PENDING.value
SENDING = DeliveryStatus.SENDING.value
_CHANNELS = {channel.value: channel for channel in ChannelName}


class ClaimedRow(NamedTuple):
    """A claimed delivery with what the dispatcher needs of its learner and enrollment.

    A named tuple, built straight from the result row: a frozen dataclass of 20 fields cost
    more to build than the rest of the claim's Python work.
    """

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
    parts_sent: int = 0  # provider messages of this delivery sent by earlier attempts
    segments_sent: int = 0  # and their SMS segments

    @property
    def is_reply(self) -> bool:
        """A reply to the learner's own message (ready-made payload)."""
        return self.kind == DeliveryKind.REPLY.value


@dataclass(slots=True)
class SentRows:
    """Columns of the rows sent in a batch (`sent_at` is the batch's time)."""

    ids: list[int]
    provider_message_ids: list[str | None]
    segments: list[int]
    locales: list[str | None]
    attempts: list[int]
    parts_sent: list[int]


@dataclass(slots=True)
class SettledRows:
    """Columns of the rows retried, held, dead or cancelled in a batch."""

    ids: list[int]
    statuses: list[str]
    attempts: list[int]
    next_attempt_at: list[datetime | None]
    error_codes: list[str | None]
    error_details: list[str | None]
    parts_sent: list[int]
    segments: list[int | None]


@dataclass(slots=True)
class EnrollmentMoves:
    """Columns of the enrollments moved onto the lessons just sent."""

    ids: list[int]
    course_ids: list[str]
    lesson_ids: list[str]
    question_indexes: list[int | None]
    attempts: list[int]
    reminders_sent: list[int]
    awaiting_since: list[datetime | None]

    def add(self, enrollment_id: int, values: Mapping[str, Any]) -> None:
        """One enrollment's move (`PreparedLesson.enrollment_values`: every column above)."""
        self.ids.append(enrollment_id)
        self.course_ids.append(values["course_id"])
        self.lesson_ids.append(values["lesson_id"])
        self.question_indexes.append(values["question_index"])
        self.attempts.append(values["attempt"])
        self.reminders_sent.append(values["reminders_sent"])
        self.awaiting_since.append(values["awaiting_since"])


# --- claiming ----------------------------------------------------------------------------

_DUE = bindparam("now_", type_=deliveries.c.due_at.type)
_UNTIL = bindparam("until_", type_=deliveries.c.claimed_until.type)
_PICKED_WHERE = (
    deliveries.c.status == PENDING,
    deliveries.c.channel == bindparam("channel_"),
    deliveries.c.due_at <= _DUE,
    or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= _DUE),
)
_CLAIM_VALUES = {
    "status": SENDING,
    "claimed_by": bindparam("token_"),
    "claimed_until": _UNTIL,
    "updated_at": _DUE,
}
# The delivery's own columns of a ClaimedRow, then the learner's and enrollment's, in the
# order of ClaimedRow's fields (rows are built positionally).
_DELIVERY_COLUMNS = (
    "id",
    "learner_id",
    "enrollment_id",
    "lesson_id",
    "kind",
    "channel",
    "priority",
    "payload",
    "attempts",
)
_JOINED_COLUMNS = (
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
_PROGRESS_COLUMNS = ("parts_sent", "segments")


def _claim_sqlite() -> tuple[Any, Any]:
    # deliveries.id is the rowid on SQLite, the index's implicit last column: no sort.
    picked = (
        select(deliveries.c.id)
        .where(*_PICKED_WHERE)
        .order_by(deliveries.c.priority, deliveries.c.due_at, deliveries.c.id)
        .limit(bindparam("limit_"))
    )
    claim = (
        deliveries.update()
        .where(deliveries.c.id.in_(picked.scalar_subquery()))
        .values(_CLAIM_VALUES)
    )
    claimed = (
        select(
            *(deliveries.c[name] for name in _DELIVERY_COLUMNS),
            *_JOINED_COLUMNS,
            *(deliveries.c[name] for name in _PROGRESS_COLUMNS),
        )
        .select_from(
            deliveries.join(learners, learners.c.id == deliveries.c.learner_id).outerjoin(
                enrollments, enrollments.c.id == deliveries.c.enrollment_id
            )
        )
        .where(deliveries.c.status == SENDING, deliveries.c.claimed_by == bindparam("token_"))
        .order_by(deliveries.c.priority, deliveries.c.due_at, deliveries.c.id)
    )
    return claim, claimed


def _chat_busy() -> Any:
    """The candidate's learner has a delivery of the channel in flight, sent just now, or
    due before the candidate (one delivery per chat per claim, the first in send order)."""
    other = deliveries.alias("other")
    earlier = (
        other.c.status == PENDING,
        other.c.due_at <= _DUE,
        or_(other.c.next_attempt_at.is_(None), other.c.next_attempt_at <= _DUE),
        tuple_(other.c.priority, other.c.due_at, other.c.id)
        < tuple_(deliveries.c.priority, deliveries.c.due_at, deliveries.c.id),
    )
    return exists().where(
        other.c.learner_id == deliveries.c.learner_id,
        other.c.channel == bindparam("channel_"),
        or_(
            other.c.status == SENDING,
            other.c.sent_at > bindparam("recent_", type_=deliveries.c.sent_at.type),
            and_(*earlier),
        ),
    )


# A per-chat claim looks at this many times its limit of the first due chats, and takes the
# chats with the most deliveries left first (see `_most_left_first`).
CANDIDATES_PER_CLAIM = 4


def _most_left_first(candidates: Any) -> Any:
    """The candidates' ids, the chats with the most deliveries of the channel left first.

    A chat takes one message per interval, so a chat with k messages left needs k intervals
    whatever the rate: served in due order, the run ended on a few chats each waiting for
    its own second, with the channel's rate unused (the tail of `bench/rate.py`). Longest
    first, as in scheduling by longest processing time, levels the chats; the candidates are
    only the first due, so nothing waits much past its turn.
    """
    other = deliveries.alias("left")
    left = (
        select(func.count())
        .where(
            other.c.learner_id == candidates.c.learner_id,
            other.c.channel == bindparam("channel_"),
            other.c.status == PENDING,
        )
        .scalar_subquery()
    )
    return (
        select(candidates.c.id)
        .order_by(candidates.c.priority, left.desc(), candidates.c.due_at)
        .limit(bindparam("limit_"))
    )


def _claim_postgres(*, per_chat: bool = False) -> Any:
    # Ordered by (priority, due_at) only, as the claim index is: with `id` added, PostgreSQL
    # read and sorted the whole backlog (100,000 rows, on disk) for every batch.
    picked = (
        select(deliveries.c.id, deliveries.c.learner_id, deliveries.c.priority, deliveries.c.due_at)
        .where(*_PICKED_WHERE, *((~_chat_busy(),) if per_chat else ()))
        .order_by(deliveries.c.priority, deliveries.c.due_at)
        .limit(bindparam("candidates_") if per_chat else bindparam("limit_"))
        # Rows another process is claiming right now are skipped, not waited for.
        .with_for_update(skip_locked=True)
    )
    if per_chat:
        picked = _most_left_first(picked.subquery("candidates"))
    else:
        picked = picked.with_only_columns(deliveries.c.id)
    claimed = (
        deliveries.update()
        .where(deliveries.c.id.in_(picked.scalar_subquery()))
        .values(_CLAIM_VALUES)
        .returning(
            *(deliveries.c[name] for name in (*_DELIVERY_COLUMNS, "due_at", *_PROGRESS_COLUMNS))
        )
        .cte("claimed")
    )
    return (
        select(
            *(claimed.c[name] for name in _DELIVERY_COLUMNS),
            *_JOINED_COLUMNS,
            *(claimed.c[name] for name in _PROGRESS_COLUMNS),
        )
        .select_from(
            claimed.join(learners, learners.c.id == claimed.c.learner_id).outerjoin(
                enrollments, enrollments.c.id == claimed.c.enrollment_id
            )
        )
        .order_by(claimed.c.priority, claimed.c.due_at, claimed.c.id)
    )


_CLAIM_SQLITE, _CLAIMED_SQLITE = _claim_sqlite()
_CLAIM_POSTGRES = _claim_postgres()
_CLAIM_POSTGRES_PER_CHAT = _claim_postgres(per_chat=True)
# Claims of a per-chat limited channel take turns (a transaction-level advisory lock), so
# each sees the rows the one before it claimed: two processes never hold one chat.
_CLAIM_TURN = text("SELECT pg_advisory_xact_lock(:key)")
_RELEASE = (
    deliveries.update()
    .where(
        deliveries.c.status == SENDING,
        deliveries.c.claimed_until < bindparam("now_", type_=deliveries.c.claimed_until.type),
    )
    .values(status=PENDING, claimed_by=None, claimed_until=None)
)
_RENEW = (
    deliveries.update()
    .where(deliveries.c.status == SENDING, deliveries.c.claimed_by == bindparam("token_"))
    .values(claimed_until=_UNTIL)
)


def _row(row: Sequence[Any]) -> ClaimedRow:
    values = list(row)
    values[5] = _CHANNELS[values[5]]
    values[-1] = values[-1] or 0  # segments: None until something was sent
    return ClaimedRow._make(values)


async def claim_batch(
    conn: AsyncConnection,
    *,
    channel: ChannelName,
    token: str,
    limit: int,
    now: datetime,
    lease_until: datetime,
    chat_interval: timedelta | None = None,
) -> list[ClaimedRow]:
    """Mark up to `limit` due rows of a channel `sending` under `token`; them, in send order.

    `chat_interval` (PostgreSQL, where several processes dispatch): a claim takes one
    delivery per learner, their first due, and none of a learner with a delivery of the
    channel in flight or sent less than `chat_interval` ago, so the channel's per-chat limit
    holds across processes, and no send of a batch waits for its chat (which left the
    channel's rate unused while a batch's last sends waited).
    """
    values: dict[str, Any] = {
        "channel_": str(channel),
        "now_": now,
        "limit_": limit,
        "token_": token,
        "until_": lease_until,
    }
    if conn.dialect.name == "postgresql":
        statement = _CLAIM_POSTGRES
        if chat_interval is not None:
            key = zlib.crc32(f"learnbot claim {channel}".encode()) - 2**31
            await conn.execute(_CLAIM_TURN, {"key": key})
            statement = _CLAIM_POSTGRES_PER_CHAT
            values["recent_"] = now - chat_interval
            values["candidates_"] = limit * CANDIDATES_PER_CLAIM
        return [_row(row) for row in await conn.execute(statement, values)]
    claimed = await conn.execute(_CLAIM_SQLITE, values)
    if not claimed.rowcount:
        return []
    return [_row(row) for row in await conn.execute(_CLAIMED_SQLITE, {"token_": token})]


async def renew_lease(conn: AsyncConnection, token: str, until: datetime) -> int:
    """Extend the lease of the rows still `sending` under `token` to `until`: the count."""
    result = await conn.execute(_RENEW, {"token_": token, "until_": until})
    return int(result.rowcount)


async def release_expired(conn: AsyncConnection, now: datetime) -> int:
    """Make rows whose lease expired (their process died) pending again: the count."""
    result = await conn.execute(_RELEASE, {"now_": now})
    return int(result.rowcount)


# --- writing back ------------------------------------------------------------------------

_SENT = (
    deliveries.update()
    .where(deliveries.c.id == bindparam("id_"))
    .values(
        status=DeliveryStatus.SENT.value,
        provider_message_id=bindparam("provider_message_id"),
        segments=bindparam("segments"),
        locale=bindparam("locale"),
        sent_at=bindparam("sent_at", type_=deliveries.c.sent_at.type),
        updated_at=bindparam("sent_at", type_=deliveries.c.sent_at.type),
        attempts=bindparam("attempts"),
        parts_sent=bindparam("parts_sent"),
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
        parts_sent=bindparam("parts_sent"),
        segments=bindparam("segments"),
        updated_at=bindparam("updated_at", type_=deliveries.c.updated_at.type),
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


def _unnest(sql: str, **arrays: str) -> TextClause:
    """`sql` whose `:name` arrays are cast to their PostgreSQL array types for `unnest`."""
    for name, array_type in arrays.items():
        sql = sql.replace(f":{name}", f"CAST(:{name} AS {array_type})")
    return text(sql)


_SENT_POSTGRES = _unnest(
    f"""
    UPDATE deliveries AS d
    SET status = '{DeliveryStatus.SENT.value}', provider_message_id = v.provider_message_id,
        segments = v.segments, locale = v.locale, sent_at = :sent_at, updated_at = :sent_at,
        attempts = v.attempts, parts_sent = v.parts_sent, payload = NULL, error_code = NULL,
        error_detail = NULL, claimed_by = NULL, claimed_until = NULL
    FROM unnest(:ids, :provider_message_ids, :segments, :locales, :attempts, :parts_sent)
        AS v(id, provider_message_id, segments, locale, attempts, parts_sent)
    WHERE d.id = v.id
    """,
    ids="BIGINT[]",
    provider_message_ids="VARCHAR[]",
    segments="INTEGER[]",
    locales="VARCHAR[]",
    attempts="INTEGER[]",
    parts_sent="INTEGER[]",
).bindparams(bindparam("sent_at", type_=deliveries.c.sent_at.type))
_SETTLE_POSTGRES = _unnest(
    """
    UPDATE deliveries AS d
    SET status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at,
        error_code = v.error_code, error_detail = v.error_detail, parts_sent = v.parts_sent,
        segments = v.segments, updated_at = :now, claimed_by = NULL, claimed_until = NULL
    FROM unnest(:ids, :statuses, :attempts, :next_attempt_at, :error_codes, :error_details,
                :parts_sent, :segments)
        AS v(id, status, attempts, next_attempt_at, error_code, error_detail, parts_sent,
             segments)
    WHERE d.id = v.id
    """,
    ids="BIGINT[]",
    statuses="VARCHAR[]",
    attempts="INTEGER[]",
    next_attempt_at="TIMESTAMPTZ[]",
    error_codes="VARCHAR[]",
    error_details="TEXT[]",
    parts_sent="INTEGER[]",
    segments="INTEGER[]",
).bindparams(bindparam("now", type_=deliveries.c.updated_at.type))
_ENROLLMENT_POSTGRES = _unnest(
    """
    UPDATE enrollments AS e
    SET course_id = v.course_id, lesson_id = v.lesson_id, question_index = v.question_index,
        attempt = v.attempt, reminders_sent = v.reminders_sent,
        awaiting_since = v.awaiting_since
    FROM unnest(:ids, :course_ids, :lesson_ids, :question_indexes, :attempts, :reminders_sent,
                :awaiting_since)
        AS v(id, course_id, lesson_id, question_index, attempt, reminders_sent, awaiting_since)
    WHERE e.id = v.id
    """,
    ids="BIGINT[]",
    course_ids="VARCHAR[]",
    lesson_ids="VARCHAR[]",
    question_indexes="INTEGER[]",
    attempts="INTEGER[]",
    reminders_sent="INTEGER[]",
    awaiting_since="TIMESTAMPTZ[]",
)
_EVENTS_POSTGRES = _unnest(
    """
    INSERT INTO events (occurred_at, type, learner_key, cohort_id, course_id, lesson_id,
                        question_id, locale, channel, correct, attempt, detail)
    SELECT occurred_at, type, learner_key, cohort_id, course_id, lesson_id, question_id,
           locale, channel, correct, attempt, CAST(detail AS JSON)
    FROM unnest(:occurred_at, :types, :learner_keys, :cohort_ids, :course_ids, :lesson_ids,
                :question_ids, :locales, :channels, :correct, :attempts, :details)
        AS v(occurred_at, type, learner_key, cohort_id, course_id, lesson_id, question_id,
             locale, channel, correct, attempt, detail)
    """,
    occurred_at="TIMESTAMPTZ[]",
    types="VARCHAR[]",
    learner_keys="VARCHAR[]",
    cohort_ids="BIGINT[]",
    course_ids="VARCHAR[]",
    lesson_ids="VARCHAR[]",
    question_ids="VARCHAR[]",
    locales="VARCHAR[]",
    channels="VARCHAR[]",
    correct="BOOLEAN[]",
    attempts="INTEGER[]",
    details="TEXT[]",
)


def _postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def mark_sent(conn: AsyncConnection, rows: SentRows, sent_at: datetime) -> None:
    """Record the rows sent: provider id, segments, locale, attempts, parts; lease released."""
    if not rows.ids:
        return
    if _postgres(conn):
        await conn.execute(
            _SENT_POSTGRES,
            {
                "ids": rows.ids,
                "provider_message_ids": rows.provider_message_ids,
                "segments": rows.segments,
                "locales": rows.locales,
                "attempts": rows.attempts,
                "parts_sent": rows.parts_sent,
                "sent_at": sent_at,
            },
        )
        return
    await conn.execute(
        _SENT,
        [
            {
                "id_": id_,
                "provider_message_id": provider_message_id,
                "segments": segments,
                "locale": locale,
                "attempts": attempts,
                "parts_sent": parts_sent,
                "sent_at": sent_at,
            }
            for id_, provider_message_id, segments, locale, attempts, parts_sent in zip(
                rows.ids,
                rows.provider_message_ids,
                rows.segments,
                rows.locales,
                rows.attempts,
                rows.parts_sent,
                strict=True,
            )
        ],
    )


async def settle(conn: AsyncConnection, rows: SettledRows, now: datetime) -> None:
    """Set status, attempts, next attempt, error and progress of rows, releasing their lease."""
    if not rows.ids:
        return
    if _postgres(conn):
        await conn.execute(
            _SETTLE_POSTGRES,
            {
                "ids": rows.ids,
                "statuses": rows.statuses,
                "attempts": rows.attempts,
                "next_attempt_at": rows.next_attempt_at,
                "error_codes": rows.error_codes,
                "error_details": rows.error_details,
                "parts_sent": rows.parts_sent,
                "segments": rows.segments,
                "now": now,
            },
        )
        return
    columns = (
        rows.ids,
        rows.statuses,
        rows.attempts,
        rows.next_attempt_at,
        rows.error_codes,
        rows.error_details,
        rows.parts_sent,
        rows.segments,
    )
    names = (
        "id_",
        "status",
        "attempts",
        "next_attempt_at",
        "error_code",
        "error_detail",
        "parts_sent",
        "segments",
    )
    await conn.execute(
        _SETTLE,
        [
            {**dict(zip(names, values, strict=True)), "updated_at": now}
            for values in zip(*columns, strict=True)
        ],
    )


async def update_enrollments(conn: AsyncConnection, moves: EnrollmentMoves) -> None:
    """Move enrollments onto the lessons just sent."""
    if not moves.ids:
        return
    columns = {
        "course_id": moves.course_ids,
        "lesson_id": moves.lesson_ids,
        "question_index": moves.question_indexes,
        "attempt": moves.attempts,
        "reminders_sent": moves.reminders_sent,
        "awaiting_since": moves.awaiting_since,
    }
    if _postgres(conn):
        await conn.execute(
            _ENROLLMENT_POSTGRES,
            {
                "ids": moves.ids,
                "course_ids": moves.course_ids,
                "lesson_ids": moves.lesson_ids,
                "question_indexes": moves.question_indexes,
                "attempts": moves.attempts,
                "reminders_sent": moves.reminders_sent,
                "awaiting_since": moves.awaiting_since,
            },
        )
        return
    await conn.execute(
        _ENROLLMENT,
        [
            {"id_": id_, **dict(zip(columns, values, strict=True))}
            for id_, values in zip(moves.ids, zip(*columns.values(), strict=True), strict=True)
        ],
    )


async def insert_events(conn: AsyncConnection, rows: Sequence[EventRow]) -> None:
    """Append `rows` to the event log in the caller's transaction (one statement)."""
    if not rows:
        return
    if not _postgres(conn):
        await append_events(conn, rows)
        return
    await conn.execute(
        _EVENTS_POSTGRES,
        {
            "occurred_at": [row.occurred_at for row in rows],
            "types": [str(row.type) for row in rows],
            "learner_keys": [row.learner_key for row in rows],
            "cohort_ids": [row.cohort_id for row in rows],
            "course_ids": [row.course_id for row in rows],
            "lesson_ids": [row.lesson_id for row in rows],
            "question_ids": [row.question_id for row in rows],
            "locales": [row.locale for row in rows],
            "channels": [None if row.channel is None else str(row.channel) for row in rows],
            "correct": [row.correct for row in rows],
            "attempts": [row.attempt for row in rows],
            "details": [None if row.detail is None else json.dumps(row.detail) for row in rows],
        },
    )


async def record_templates(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert the WhatsApp template deliveries sent in place of held lessons (once each)."""
    if not rows:
        return
    dialect = postgresql if _postgres(conn) else sqlite
    statement = dialect.insert(deliveries).on_conflict_do_nothing(
        index_elements=["enrollment_id", "lesson_id", "kind"]
    )
    await conn.execute(statement, list(rows))
