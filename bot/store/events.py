"""The append-only completion log: events are inserted in batches, never updated or deleted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import EventType
from bot.store.db import utcnow
from bot.store.fastpath import hot
from bot.store.tables import events as events_table


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    """One entry of the events table; learners are named by their opaque learner_key only."""

    type: EventType
    learner_key: str
    cohort_id: int | None = None
    course_id: str | None = None
    lesson_id: str | None = None
    question_id: str | None = None
    locale: str | None = None  # the locale actually delivered
    channel: str | None = None
    correct: bool | None = None
    attempt: int | None = None
    detail: Mapping[str, Any] | None = None
    occurred_at: datetime = field(default_factory=utcnow)


_INSERT = hot(events_table.insert())


async def append_events(conn: AsyncConnection, events: Sequence[EventRow]) -> None:
    """Insert `events` into the event log in one executemany, inside the caller's transaction."""
    if not events:
        return  # an executemany with no parameters would insert one row of defaults
    await conn.execute(_INSERT, [_values(event) for event in events])


def _values(row: EventRow) -> dict[str, Any]:
    return {
        "occurred_at": row.occurred_at,
        "type": str(row.type),
        "learner_key": row.learner_key,
        "cohort_id": row.cohort_id,
        "course_id": row.course_id,
        "lesson_id": row.lesson_id,
        "question_id": row.question_id,
        "locale": row.locale,
        "channel": None if row.channel is None else str(row.channel),
        "correct": row.correct,
        "attempt": row.attempt,
        "detail": None if row.detail is None else dict(row.detail),
    }
