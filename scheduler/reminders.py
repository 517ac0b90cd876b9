"""The reminder job: remind learners who have not answered, and pause them after the last one.

Reminder rows go into the outbox with kind `reminder` and a `lesson_id` key from
`scheduler.planner.reminder_key`; the dispatcher renders them from the enrollment's open
question at send time. Pausing sets the learner `paused` (the dialogue makes them active again
when they reply) and appends a `paused` event for the completion log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.domain import EventType
from bot.store.events import EventRow, append_events
from bot.store.tables import enrollments, learners
from scheduler import plan_store
from scheduler.plan_job import (
    PAGE_SIZE,
    PlanStats,
    log_plan,
    run_pages,
    to_inputs,
)
from scheduler.plan_store import Dialect
from scheduler.planner import CohortInput, Pause, Plan, plan

log = logging.getLogger(__name__)


async def record_pauses(
    conn: AsyncConnection, d: Dialect, pauses: list[Pause], now: datetime
) -> None:
    """Set paused learners' status and log a `paused` event for each."""
    if not pauses:
        return
    await plan_store.pause_learners(conn, d, [p.learner_id for p in pauses], now)
    ids = [p.enrollment_id for p in pauses]
    rows = await conn.execute(
        select(
            enrollments.c.id,
            enrollments.c.cohort_id,
            enrollments.c.course_id,
            learners.c.learner_key,
        )
        .select_from(enrollments.join(learners, learners.c.id == enrollments.c.learner_id))
        .where(enrollments.c.id.in_(ids))
    )
    known = {row.id: row for row in rows}
    events = []
    for pause in pauses:
        row = known.get(pause.enrollment_id)
        if row is None:
            continue
        events.append(
            EventRow(
                type=EventType.PAUSED,
                learner_key=row.learner_key,
                cohort_id=row.cohort_id,
                course_id=row.course_id,
                lesson_id=pause.lesson_id,
                detail={"reason": pause.reason},
                occurred_at=now,
            )
        )
    await append_events(conn, events)


async def remind_page(
    conn: AsyncConnection,
    *,
    after: int,
    now: datetime,
    cohort_map: Mapping[int, CohortInput],
    orders: Mapping[str, Any],
    stats: PlanStats,
    page_size: int = PAGE_SIZE,
) -> int | None:
    """Remind or pause one page of awaiting enrollments; the last id read, None when done."""
    d = Dialect(conn)
    # The shortest reminder interval of any cohort: nobody sent later can be due yet.
    shortest = min(
        (c.schedule.reminders.interval for c in cohort_map.values()), default=timedelta(hours=1)
    )
    rows = await plan_store.awaiting_page(
        conn, d, after=after, since=now - shortest, limit=page_size
    )
    if not rows:
        return None
    inputs = to_inputs(rows, {}, cohort_map, d)
    result: Plan = plan(
        now, cohort_map.values(), inputs, orders, misfire_grace=timedelta(0), lessons=False
    )
    stats.examined += len(rows)
    inserted = await plan_store.insert_outbox(
        conn,
        d,
        (
            (x.learner_id, x.enrollment_id, x.lesson_id, x.kind.value, x.channel, x.due_at)
            for x in result.due
        ),
        now,
    )
    await plan_store.set_column(conn, d, "reminders_sent", result.reminders_sent)
    await record_pauses(conn, d, result.pauses, now)
    stats.add(result, inserted)
    log_plan(result)
    return int(rows[-1][0])


async def remind_once(
    engine: AsyncEngine, courses: Mapping[str, Any], *, now: datetime, page_size: int = PAGE_SIZE
) -> PlanStats:
    """One reminder pass: reminders into the outbox, reminders_sent counted, pauses applied."""
    step = partial(remind_page, now=now, page_size=page_size)
    return await run_pages(engine, courses, now=now, what="reminded", step=step)
