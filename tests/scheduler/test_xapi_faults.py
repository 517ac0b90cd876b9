"""Faults while forwarding: kill -9 `learnbot serve` five times, and stop and restart the LRS.

The serving process forwards the log to a real Ralph. It is killed at random moments while
it forwards (between a POST and the cursor's commit is one of them: that batch goes again);
the LRS is killed in the middle of the forwarding and served again on the same store. At the
end the LRS holds exactly one statement per event: none missing, none twice, read back from
its API and from the file its backend writes.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.xapi.statements import StatementMapper
from bot.lessons.loader import load_courses
from bot.store.db import utcnow
from bot.store.events import append_events
from bot.store.tables import xapi_cursor
from tests.fakes.ralph_lrs import RalphLrs, free_port
from tests.scheduler.xapi_journeys import synthetic_events

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 2500
BATCH = 20
KILLS = 5
SECRET = "xapi-fault-test-secret-0123456789"
PUBLIC_URL = "http://learnbot-faults.test"
LEARNBOT = ROOT / ".venv" / "bin" / "learnbot"


@pytest.fixture
def lrs(tmp_path: Path) -> Iterator[RalphLrs]:
    with RalphLrs(tmp_path / "ralph") as server:
        yield server


async def log_events(engine: AsyncEngine, count: int) -> None:
    """A log of `count` events of every kind the course journey writes, a day old."""
    async with engine.begin() as conn:
        await append_events(conn, synthetic_events(count, 0, utcnow() - timedelta(days=1)))


def serve(database_url: str, lrs: RalphLrs, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LEARNBOT_DATABASE_URL": database_url,
        "LEARNBOT_PORT": str(free_port()),
        "LEARNBOT_PUBLIC_URL": PUBLIC_URL,
        "LEARNBOT_SECRET_KEY": SECRET,
        "LEARNBOT_XAPI_ENDPOINT": lrs.endpoint,
        "LEARNBOT_XAPI_USERNAME": lrs.username,
        "LEARNBOT_XAPI_PASSWORD": lrs.password,
        "LEARNBOT_XAPI_BATCH": str(BATCH),
    }
    for name in ("TELEGRAM_BOT_TOKEN", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "LEARNBOT_DEMO"):
        env.pop(name, None)
    with log.open("ab") as out:
        return subprocess.Popen([str(LEARNBOT), "serve"], cwd=ROOT, env=env, stdout=out, stderr=out)


async def cursor(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(select(xapi_cursor.c.last_event_id))
    return int(value or 0)


async def wait_for(engine: AsyncEngine, past: int, deadline: float) -> int:
    """Wait until the cursor is past `past`; its value."""
    while time.monotonic() < deadline:
        now = await cursor(engine)
        if now > past:
            return now
        await asyncio.sleep(0.05)
    raise AssertionError(f"the forwarder did not move past event {past} in time")


async def test_kill_9_serve_five_times_and_restart_the_lrs_and_every_event_is_there_once(
    engine: AsyncEngine, database_url: str, lrs: RalphLrs, tmp_path: Path
) -> None:
    await log_events(engine, EVENTS)
    rng = random.Random(5)
    log = tmp_path / "serve.log"
    deadline = time.monotonic() + 240
    kills: list[int] = []
    for kill in range(KILLS):
        process = serve(database_url, lrs, log)
        moved = await wait_for(engine, await cursor(engine), deadline)
        if kill == 2:  # the LRS goes away while the forwarder sends, and comes back
            lrs.stop()
            await asyncio.sleep(1.5)
            lrs.start()
            moved = await wait_for(engine, moved, deadline)
        await asyncio.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills.append(await cursor(engine))
    assert kills[-1] < EVENTS, "the kills must fall while it forwards: more events needed"

    process = serve(database_url, lrs, log)
    try:
        while await cursor(engine) < EVENTS:
            assert time.monotonic() < deadline, "the last run did not catch up in time"
            await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    mapper = StatementMapper(PUBLIC_URL, SECRET, load_courses(ROOT / "lessons"))
    expected = {mapper.statement_id(n) for n in range(1, EVENTS + 1)}
    stored = Counter(s["id"] for s in lrs.statements(PUBLIC_URL))
    written = Counter(s["id"] for s in lrs.stored_lines())
    served = log.read_text()
    print(
        f"\ncursor at each kill: {kills}; statements {sum(stored.values())} of {EVENTS} events;"
        f" batches the LRS already held (sent again after a kill): {served.count('204 No')};"
        f" LRS stopped with a POST in flight: {'ReadError' in served or 'Protocol' in served}"
    )
    assert set(stored) == expected  # none missing
    assert max(stored.values()) == 1  # none twice, through the API
    assert max(written.values()) == 1  # and in the backend's file
    assert "Traceback" not in served
