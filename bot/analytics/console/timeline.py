"""A learner's timeline: their events and deliveries in time order, found by pseudonym."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.common import SANDBOX
from bot.analytics.figures import N_, Cell, Column, Figure, FigureContext, Scope, figure
from bot.analytics.pseudonym import PSEUDONYM_LENGTH, pseudonym
from bot.domain import LearnerStatus
from bot.store.tables import deliveries, enrollments, events, learners

EVENT_LIMIT = 2000  # a learner of the shipped course logs about 60 events
SOURCE_EVENT = "event"
SOURCE_DELIVERY = "delivery"


@dataclass(slots=True)
class _Known:
    """Pseudonyms already computed for one database and key: learner rows never change key."""

    last_id: int = 0
    by_pseudonym: dict[str, tuple[int, str, str]] = field(default_factory=dict)


# (database URL, secret key) -> what was hashed so far. An HMAC cannot be looked up in SQL,
# so each learner is hashed once per process and only learners added since are read again.
_KNOWN: dict[tuple[str, str], _Known] = {}


async def _refresh(conn: AsyncConnection, secret_key: str) -> _Known:
    known = _KNOWN.setdefault((str(conn.engine.url), secret_key), _Known())
    query = (
        select(learners.c.id, learners.c.learner_key, learners.c.channel)
        .where(learners.c.id > known.last_id)
        .order_by(learners.c.id)
    )
    key = secret_key.encode("utf-8")
    for learner_id, learner_key, channel in await conn.execute(query):
        # The C one-shot digest: about a microsecond a learner (`pseudonym` is the same HMAC).
        digest = hmac.digest(key, learner_key.encode("utf-8"), hashlib.sha256)
        known.by_pseudonym[digest.hex()[:PSEUDONYM_LENGTH]] = (
            int(learner_id),
            str(learner_key),
            str(channel),
        )
        known.last_id = max(known.last_id, int(learner_id))
    return known


async def find_learner(
    conn: AsyncConnection, learner_pseudonym: str, scope: Scope, context: FigureContext
) -> tuple[int, str] | None:
    """(learner id, learner_key) of the learner with that pseudonym in scope, or None."""
    wanted = learner_pseudonym.strip().lower()
    if len(wanted) != PSEUDONYM_LENGTH:
        return None
    known = await _refresh(conn, context.secret_key)
    found = known.by_pseudonym.get(wanted)
    if found is None or found[2] == SANDBOX:
        return None
    learner_id, learner_key, _ = found
    assert pseudonym(context.secret_key, learner_key) == wanted
    if scope.cohort_ids is not None:
        enrolled = select(enrollments.c.id).where(
            enrollments.c.learner_id == learner_id,
            enrollments.c.cohort_id.in_(sorted(scope.cohort_ids)),
        )
        if not scope.cohort_ids or (await conn.execute(enrolled.limit(1))).first() is None:
            return None
    return learner_id, learner_key


async def learner_timeline(
    conn: AsyncConnection,
    learner_pseudonym: str,
    scope: Scope,
    context: FigureContext,
    *,
    reveal: bool = False,
) -> Figure | None:
    """The learner's events and deliveries, oldest first; None if no such learner in scope.

    A trainer sees only what happened in their cohorts (and no reply outside any cohort).
    The address (phone number, chat id) is added only when `reveal` and the reader is an admin.
    """
    found = await find_learner(conn, learner_pseudonym, scope, context)
    if found is None:
        return None
    learner_id, learner_key = found
    event_query = (
        select(
            events.c.occurred_at,
            events.c.type,
            events.c.cohort_id,
            events.c.course_id,
            events.c.lesson_id,
            events.c.question_id,
            events.c.channel,
            events.c.locale,
            events.c.correct,
            events.c.attempt,
        )
        .where(events.c.learner_key == learner_key)
        .order_by(events.c.occurred_at, events.c.id)
        .limit(EVENT_LIMIT)
    )
    delivery_query = (
        select(
            deliveries.c.created_at,
            deliveries.c.sent_at,
            deliveries.c.kind,
            deliveries.c.status,
            enrollments.c.cohort_id,
            enrollments.c.course_id,
            deliveries.c.lesson_id,
            deliveries.c.channel,
            deliveries.c.locale,
            deliveries.c.error_code,
            deliveries.c.segments,
        )
        .select_from(
            deliveries.outerjoin(enrollments, enrollments.c.id == deliveries.c.enrollment_id)
        )
        .where(deliveries.c.learner_id == learner_id)
        .order_by(deliveries.c.created_at, deliveries.c.id)
        .limit(EVENT_LIMIT)
    )
    if scope.cohort_ids is not None:
        allowed = sorted(scope.cohort_ids)
        event_query = event_query.where(events.c.cohort_id.in_(allowed))
        delivery_query = delivery_query.where(enrollments.c.cohort_id.in_(allowed))
    entries: list[tuple[datetime, int, list[Cell]]] = []
    for row in await conn.execute(event_query):
        detail = {None: "", True: "right", False: "wrong"}[row.correct]
        if row.attempt is not None:
            detail = f"{detail} #{row.attempt}".strip()
        entries.append(
            (
                row.occurred_at,
                0,
                [
                    row.occurred_at,
                    SOURCE_EVENT,
                    row.type,
                    row.cohort_id,
                    row.course_id,
                    row.lesson_id,
                    row.question_id,
                    row.channel,
                    row.locale,
                    detail,
                ],
            )
        )
    for row in await conn.execute(delivery_query):
        at = row.sent_at or row.created_at
        detail = " ".join(
            part
            for part in (
                row.error_code or "",
                f"{row.segments} SMS" if row.segments else "",
            )
            if part
        )
        entries.append(
            (
                at,
                1,
                [
                    at,
                    SOURCE_DELIVERY,
                    f"{row.kind}:{row.status}",
                    row.cohort_id,
                    row.course_id,
                    None if str(row.lesson_id).startswith("reply:") else row.lesson_id,
                    None,
                    row.channel,
                    row.locale,
                    detail,
                ],
            )
        )
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    columns = list(COLUMNS)
    rows = [cells for _, _, cells in entries]
    if reveal and scope.is_admin:
        address = (
            await conn.execute(
                select(learners.c.address, learners.c.status).where(learners.c.id == learner_id)
            )
        ).one()
        shown = address.address if address.status != LearnerStatus.DELETED else None
        columns.append(Column("address", N_("Address")))
        rows = [[*cells, shown] for cells in rows]
    return figure(
        "timeline",
        N_("Learner timeline"),
        columns,
        rows,
        note=N_("Events of the completion log and messages of the outbox, oldest first."),
    )


COLUMNS = (
    Column("at", N_("When"), "datetime"),
    Column("source", N_("Source")),
    Column("what", N_("What")),
    Column("cohort_id", N_("Cohort id"), "count"),
    Column("course", N_("Course")),
    Column("lesson", N_("Lesson")),
    Column("question", N_("Question")),
    Column("channel", N_("Channel")),
    Column("locale", N_("Locale")),
    Column("detail", N_("Detail")),
)
