"""Overview and funnel of the hand-built world: per cohort, per lesson, scoped and filtered."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.analytics.console.funnel import funnel
from bot.analytics.console.overview import overview
from bot.analytics.figures import Figure, Filters
from tests.analytics.conftest import Console
from tests.analytics.console_world import COURSE, NOW

pytestmark = pytest.mark.asyncio(loop_scope="module")


def table(found: Figure) -> list[dict[str, Any]]:
    """The figure's rows as dicts by column key."""
    keys = [column.key for column in found.columns]
    return [dict(zip(keys, row, strict=True)) for row in found.rows]


async def test_overview_counts_each_cohort_without_the_sandbox(console: Console) -> None:
    async with console.engine.connect() as conn:
        (cohorts,) = await overview(conn, Filters(), console.admin, console.context)
    north, south = table(cohorts)
    # 16 learners (the sandbox learner is the 17th); n00-n04 answered the survey 2 days ago.
    assert north["cohort"] == "North"
    assert (north["enrolled"], north["active"]) == (16, 5)
    # Only n00 completed all 8 teaching lessons; lessons done: 8, 2, 2, six 1s, seven 0s.
    assert north["completion_rate"] == pytest.approx(1 / 16)
    assert north["median_lessons"] == 1.0
    assert north["last_activity"] == console.world.latest[console.world.north]
    assert north["last_activity"] < NOW - timedelta(days=1)  # not the sandbox's, an hour ago
    assert (south["enrolled"], south["active"], south["completion_rate"]) == (3, 3, 0.0)


async def test_a_trainer_sees_only_their_cohort(console: Console) -> None:
    async with console.engine.connect() as conn:
        (tom,) = await overview(conn, Filters(), console.tom, console.context)
        (una,) = await overview(conn, Filters(), console.una, console.context)
        # Asking for another trainer's cohort by id shows nothing rather than that cohort.
        (sneaky,) = await overview(
            conn, Filters(cohort_id=console.world.south), console.tom, console.context
        )
    assert [row["cohort"] for row in table(tom)] == ["North"]
    assert [row["cohort"] for row in table(una)] == ["South"]
    assert sneaky.rows == ()


async def test_the_date_range_keeps_the_enrollments_made_in_it(console: Console) -> None:
    day = (NOW - timedelta(days=30)).date()
    async with console.engine.connect() as conn:
        (before,) = await overview(
            conn, Filters(until=day - timedelta(days=1)), console.admin, console.context
        )
        (on_the_day,) = await overview(
            conn, Filters(since=day, until=day), console.admin, console.context
        )
    assert [row["enrolled"] for row in table(before)] == [0, 0]
    assert [row["enrolled"] for row in table(on_the_day)] == [16, 3]
    # Nothing was completed on the enrollment day: no lesson counts yet.
    assert [row["median_lessons"] for row in table(on_the_day)] == [0.0, 0.0]


async def test_the_funnel_follows_the_course_order(console: Console) -> None:
    async with console.engine.connect() as conn:
        (found,) = await funnel(conn, Filters(), console.tom, console.context)
    rows = {row["lesson"]: row for row in table(found)}
    lessons = [row["lesson"] for row in table(found)]
    assert lessons == list(console.context.courses[COURSE].lessons)
    pre, ucd, privacy = (
        rows["pre-assessment"],
        rows["user-centred-design"],
        rows["privacy-security-ethics"],
    )
    assert (pre["delivered"], pre["answered"], pre["completed"]) == (16, 15, 15)
    assert (ucd["delivered"], ucd["answered"], ucd["completed"]) == (14, 9, 9)
    assert (privacy["delivered"], privacy["answered"], privacy["completed"]) == (7, 6, 3)
    assert pre["drop_off"] is None
    assert ucd["drop_off"] == pytest.approx((15 - 9) / 15)
    assert privacy["drop_off"] == pytest.approx((9 - 3) / 9)
    # Where learners left: n12 stopped and n13 paused at lesson 1, n14 unreachable at 2,
    # n15 stopped at the pre-assessment.
    assert (ucd["stopped"], ucd["paused"], ucd["unreachable"]) == (1, 1, 0)
    assert (privacy["stopped"], privacy["paused"], privacy["unreachable"]) == (0, 0, 1)
    assert pre["stopped"] == 1


async def test_the_funnel_of_all_cohorts_adds_south(console: Console) -> None:
    async with console.engine.connect() as conn:
        (found,) = await funnel(conn, Filters(), console.admin, console.context)
    ucd = next(row for row in table(found) if row["lesson"] == "user-centred-design")
    assert (ucd["delivered"], ucd["answered"], ucd["completed"]) == (17, 12, 12)


async def test_the_funnel_counts_what_happened_in_the_range(console: Console) -> None:
    # The pre-assessment went out on day 1 (30 days ago), user-centred-design on day 3.
    first_day = (NOW - timedelta(days=30)).date()
    async with console.engine.connect() as conn:
        (found,) = await funnel(
            conn, Filters(since=first_day, until=first_day), console.tom, console.context
        )
        (other_course,) = await funnel(
            conn, Filters(course_id="no-such-course"), console.admin, console.context
        )
    rows = {row["lesson"]: row for row in table(found)}
    assert rows["pre-assessment"]["delivered"] == 16
    assert rows["user-centred-design"]["delivered"] == 0
    assert other_course.rows == ()
