"""`learnbot xapi status|backfill|send --dry-run`, on the test database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.xapi.log import CURSOR
from bot.domain import EventType
from bot.store import xapi_state
from bot.store.events import EventRow, append_events
from tests.trainers.conftest import Cli, Staff

ENDPOINT = {
    "LEARNBOT_XAPI_ENDPOINT": "http://127.0.0.1:9/xAPI",
    "LEARNBOT_XAPI_USERNAME": "learnbot",
    "LEARNBOT_XAPI_PASSWORD": "lrs-password",
}
LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def log_events(engine: AsyncEngine, cohort_id: int, count: int, at: datetime) -> None:
    rows = [
        EventRow(
            type=EventType.LESSON_DELIVERED,
            learner_key=f"key-{n}",
            cohort_id=cohort_id,
            course_id="digital-skills",
            lesson_id="user-centred-design",
            locale="fr",
            channel="sms",
            occurred_at=at + timedelta(minutes=n),
        )
        for n in range(count)
    ]
    async with engine.begin() as conn:
        await append_events(conn, rows)


async def test_status_shows_the_lag_the_last_error_and_the_parked_statements(
    engine: AsyncEngine, staff: Staff, cli: Cli
) -> None:
    await log_events(engine, staff.toms_cohort.id, 5, LONG_AGO)
    async with engine.begin() as conn:
        await xapi_state.ensure_cursor(conn, CURSOR)
        await xapi_state.take_lease(conn, CURSOR, "host:1:x", LONG_AGO, timedelta(seconds=15))
        await xapi_state.advance(conn, CURSOR, "host:1:x", (0, 2), LONG_AGO)
        await xapi_state.park(conn, [xapi_state.Parked(3, "abc", 400, "400 bad actor")], LONG_AGO)
        await xapi_state.record_error(conn, CURSOR, "503 Service Unavailable", LONG_AGO)

    result = await cli("xapi", "status", env=ENDPOINT)

    assert result.exit_code == 0, result.output
    assert "forwarding to http://127.0.0.1:9/xAPI" in result.output
    assert "sent up to event 2 of 5" in result.output
    assert "lag: 2 events" in result.output  # 4 and 5; 3 is parked
    assert "last error" in result.output and "503 Service Unavailable" in result.output
    assert "1 statement parked" in result.output
    assert "event 3, statement abc: 400 bad actor" in result.output


async def test_status_speaks_the_trainers_language(staff: Staff, cli: Cli) -> None:
    result = await cli("xapi", "status", locale="fr")

    assert "le transfert est désactivé : LEARNBOT_XAPI_ENDPOINT n'est pas défini" in result.output
    assert "rien n'a encore été envoyé" in result.output


async def test_backfill_is_for_admins_and_rewinds_to_the_day_given(
    engine: AsyncEngine, staff: Staff, cli: Cli
) -> None:
    await log_events(engine, staff.toms_cohort.id, 3, LONG_AGO)
    await log_events(engine, staff.toms_cohort.id, 2, LONG_AGO + timedelta(days=10))
    async with engine.begin() as conn:
        await xapi_state.ensure_cursor(conn, CURSOR)
        await xapi_state.take_lease(conn, CURSOR, "host:1:x", LONG_AGO, timedelta(seconds=15))
        await xapi_state.advance(conn, CURSOR, "host:1:x", (0, 5), LONG_AGO)

    refused = await cli("xapi", "backfill", user="tom@example.org")
    done = await cli("xapi", "backfill", "--since", "2026-01-10", user="ada@example.org")

    assert refused.exit_code == 1
    assert "only an admin may backfill the LRS" in refused.output
    assert done.exit_code == 0, done.output
    assert "2 events will be sent again, from event 4 on" in done.output
    assert "sent up to event 3 of 5" in (await cli("xapi", "status")).output


async def test_a_dry_run_prints_the_next_statements_and_sends_nothing(
    engine: AsyncEngine, staff: Staff, cli: Cli
) -> None:
    await log_events(engine, staff.toms_cohort.id, 3, LONG_AGO)

    result = await cli("xapi", "send", "--dry-run", "--limit", "2", user="ada@example.org")

    assert result.exit_code == 0, result.output
    statements = [json.loads(line) for line in result.output.splitlines()]
    assert [s["verb"]["id"] for s in statements] == ["http://adlnet.gov/expapi/verbs/launched"] * 2
    assert statements[0]["context"]["language"] == "fr"
    assert "sent up to event 0 of 3" in (await cli("xapi", "status")).output
    without = await cli("xapi", "send", user="ada@example.org")
    assert without.exit_code == 2 and "--dry-run" in without.output
