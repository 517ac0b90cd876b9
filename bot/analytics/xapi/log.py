"""Reads for the xAPI forwarder: events after the cursor, assessment scores, the status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Integer, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.xapi.statements import EventRecord, Score
from bot.domain import EventType
from bot.store.tables import events, xapi_cursor, xapi_parked

CURSOR = "lrs"  # the one LRS we forward to; a row per LRS if there are ever more


async def events_after(conn: AsyncConnection, after_id: int, limit: int) -> list[EventRecord]:
    """Up to `limit` events with an id above `after_id`, in id order."""
    query = select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
    return [EventRecord(**row._mapping) for row in await conn.execute(query)]


async def assessment_scores(
    conn: AsyncConnection, completions: Sequence[EventRecord]
) -> dict[int, Score]:
    """For completions of assessments: items right at the first attempt, out of those graded.

    Only answers logged before the completion count, so a resent statement scores the same.
    """
    if not completions:
        return {}
    right = func.sum(events.c.correct.cast(Integer))
    scores: dict[int, Score] = {}
    for done in completions:
        query = select(right, func.count()).where(
            events.c.type == EventType.ANSWERED.value,
            events.c.learner_key == done.learner_key,
            events.c.lesson_id == done.lesson_id,
            events.c.course_id == done.course_id,
            _same_cohort(done.cohort_id),
            events.c.attempt == 1,
            events.c.correct.is_not(None),
            events.c.id < done.id,
        )
        row = (await conn.execute(query)).one()
        scores[done.id] = Score(right=int(row[0] or 0), graded=int(row[1]))
    return scores


def _same_cohort(cohort_id: int | None) -> ColumnElement[bool]:
    return events.c.cohort_id.is_(None) if cohort_id is None else events.c.cohort_id == cohort_id


async def event_id_before(conn: AsyncConnection, since: datetime) -> int:
    """The id after which the events from `since` on begin (for a backfill)."""
    first = await conn.scalar(select(func.min(events.c.id)).where(events.c.occurred_at >= since))
    if first is None:
        last = await conn.scalar(select(func.max(events.c.id)))
        return int(last or 0)
    return int(first) - 1


@dataclass(frozen=True, slots=True)
class ParkedStatement:
    """A statement the LRS refused, with its reason."""

    event_id: int
    statement_id: str
    status_code: int
    reason: str
    parked_at: datetime


@dataclass(frozen=True, slots=True)
class ForwardingStatus:
    """How far the LRS is behind the log, and what went wrong last."""

    last_event_id: int
    newest_event_id: int
    lag_events: int
    oldest_unsent_at: datetime | None
    last_sent_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    holder: str | None
    lease_until: datetime | None
    parked: list[ParkedStatement]

    def lag_seconds(self, now: datetime) -> float:
        """Seconds since the oldest event the LRS does not hold yet (0 when none)."""
        if self.oldest_unsent_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_unsent_at).total_seconds())


async def forwarding_status(conn: AsyncConnection, *, parked_limit: int = 50) -> ForwardingStatus:
    """The forwarder's cursor against the log, and the parked statements (newest first)."""
    cursor = (await conn.execute(select(xapi_cursor).where(xapi_cursor.c.name == CURSOR))).first()
    last = int(cursor.last_event_id) if cursor is not None else 0
    newest = int(await conn.scalar(select(func.coalesce(func.max(events.c.id), 0))) or 0)
    parked_ids = select(xapi_parked.c.event_id)
    unsent = and_(events.c.id > last, events.c.id.not_in(parked_ids))
    lag = int(await conn.scalar(select(func.count()).where(unsent)) or 0)
    oldest = await conn.scalar(
        select(events.c.occurred_at).where(unsent).order_by(events.c.id).limit(1)
    )
    parked = [
        ParkedStatement(**row._mapping)
        for row in await conn.execute(
            select(
                xapi_parked.c.event_id,
                xapi_parked.c.statement_id,
                xapi_parked.c.status_code,
                xapi_parked.c.reason,
                xapi_parked.c.parked_at,
            )
            .order_by(xapi_parked.c.event_id.desc())
            .limit(parked_limit)
        )
    ]
    return ForwardingStatus(
        last_event_id=last,
        newest_event_id=newest,
        lag_events=lag,
        oldest_unsent_at=oldest,
        last_sent_at=None if cursor is None else cursor.last_sent_at,
        last_error=None if cursor is None else cursor.last_error,
        last_error_at=None if cursor is None else cursor.last_error_at,
        holder=None if cursor is None else cursor.holder,
        lease_until=None if cursor is None else cursor.lease_until,
        parked=parked,
    )
