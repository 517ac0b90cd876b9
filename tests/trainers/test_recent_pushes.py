"""A cohort's latest pushes, newest first, for its trainer only."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.trainers.push import start_push
from bot.trainers.recent_pushes import recent_pushes
from bot.trainers.roles import RoleError
from tests.trainers.conftest import LESSON, Staff


async def test_latest_pushes_newest_first(engine: AsyncEngine, staff: Staff) -> None:
    cohort = staff.toms_cohort
    first = await start_push(
        engine, user=staff.tom, cohort_id_or_code=str(cohort.id), lesson_id=LESSON
    )
    second = await start_push(
        engine, user=staff.tom, cohort_id_or_code=str(cohort.id), lesson_id=LESSON
    )
    async with engine.connect() as conn:
        listed = await recent_pushes(conn, staff.tom, cohort)
        assert [(p.id, p.lesson_id, p.status) for p in listed] == [
            (second.id, LESSON, "done"),  # nobody to send to: done at once
            (first.id, LESSON, "done"),
        ]
        assert [p.id for p in await recent_pushes(conn, staff.tom, cohort, limit=1)] == [second.id]
        with pytest.raises(RoleError):
            await recent_pushes(conn, staff.una, cohort)
