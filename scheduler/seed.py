"""Seed many learners quickly, all due now: for benchmarks and scale tests (not for production)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import ChannelName, LearnerStatus
from bot.store.tables import cohorts, enrollments, learners
from scheduler.schedule import Schedule
from scheduler.slots import slots_between
from scheduler.timezones import zone

BATCH = 20_000


async def seed_cohort(
    engine: AsyncEngine,
    *,
    learners_count: int,
    course_id: str,
    now: datetime,
    channel: ChannelName = ChannelName.SANDBOX,
    time_zones: Sequence[str | None] = (None,),
    schedule: Schedule | None = None,
    cohort_zone: str = "Africa/Nairobi",
    due_at: datetime | None = None,
    name: str = "bench",
) -> int:
    """Create a cohort with `learners_count` active learners whose first lesson is due now.

    Learners cycle through `time_zones` (None: derived from the address, i.e. Nairobi for
    SMS/WhatsApp, else the cohort's); addresses are `+2547...` numbers, unique per call. The
    default schedule sends every day at now's minute in the cohort zone, and each enrollment's
    next_due_at is its zone's latest slot (or `due_at`). Returns the cohort id.
    """
    if schedule is None:
        # Every day at the current minute of the cohort's zone: the slot has just come.
        local = now.astimezone(zone(cohort_zone))
        schedule = Schedule(days=(0, 1, 2, 3, 4, 5, 6), at=time(local.hour, local.minute))
    # Each learner is due at the latest slot of their own zone (maybe beyond the grace).
    slot_by_zone: dict[str | None, datetime] = {}
    for tz_name in time_zones:
        tz = zone(tz_name or cohort_zone)
        slots = slots_between(now - timedelta(days=8), now, schedule, tz, None)
        slot_by_zone[tz_name] = due_at or (slots[-1] if slots else now)
    tag = uuid.uuid4().hex[:8]
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(cohorts).values(
                name=name,
                join_code=f"{name[:12]}-{tag}",
                course_ids=[course_id],
                time_zone=cohort_zone,
                start_date=date(2000, 1, 1),
                pacing=schedule.pacing,
                schedule=schedule.to_json(),
                status="active",
                created_at=now,
            )
        )
        (cohort_id,) = result.inserted_primary_key or (None,)
        assert cohort_id is not None
    base = int(tag, 16) % 10_000
    for start in range(0, learners_count, BATCH):
        stop = min(start + BATCH, learners_count)
        keys = [f"{tag}-{i:08d}" for i in range(start, stop)]
        async with engine.begin() as conn:
            await conn.execute(
                insert(learners),
                [
                    {
                        "learner_key": key,
                        "channel": channel.value,
                        "address": f"+2547{base:04d}{i:05d}"
                        if channel in (ChannelName.SMS, ChannelName.WHATSAPP)
                        else f"{tag}-{i}",
                        "locale": "en",
                        "time_zone": time_zones[i % len(time_zones)] if time_zones else None,
                        "status": LearnerStatus.ACTIVE.value,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, key in zip(range(start, stop), keys, strict=True)
                ],
            )
            # Keys sort like their index, so this lists the new ids in learner order.
            ids = (
                (
                    await conn.execute(
                        select(learners.c.id)
                        .where(learners.c.learner_key.between(keys[0], keys[-1]))
                        .order_by(learners.c.learner_key)
                    )
                )
                .scalars()
                .all()
            )
            await conn.execute(
                insert(enrollments),
                [
                    {
                        "learner_id": learner_id,
                        "cohort_id": cohort_id,
                        "course_id": course_id,
                        "attempt": 0,
                        "status": "active",
                        "next_due_at": slot_by_zone[time_zones[(start + n) % len(time_zones)]],
                        "reminders_sent": 0,
                        "enrolled_at": now,
                    }
                    for n, learner_id in enumerate(ids)
                ],
            )
    return int(cohort_id)
