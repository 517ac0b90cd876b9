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
from bot.domain import EventType
from bot.lessons.loader import load_courses
from bot.store.db import utcnow
from bot.store.events import EventRow, append_events
from bot.store.tables import xapi_cursor
from tests.fakes.ralph_lrs import RalphLrs, free_port

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 2500
BATCH = 20
KILLS = 5
SECRET = "xapi-fault-test-secret-0123456789"
PUBLIC_URL = "http://learnbot-faults.test"
LEARNBOT = ROOT / ".venv" / "bin" / "learnbot"
KINDS = (
    EventType.LESSON_DELIVERED,
    EventType.ANSWERED,
    EventType.ANSWERED,
    EventType.LESSON_COMPLETED,
    EventType.ENROLLED,
    EventType.STOPPED,
)


@pytest.fixture
def lrs(tmp_path: Path) -> Iterator[RalphLrs]:
    with RalphLrs(tmp_path / "ralph") as server:
        yield server


async def log_events(engine: AsyncEngine, count: int) -> None:
    """A log of `count` events of every kind the course journey writes."""
    rng = random.Random(11)
    start = utcnow() - timedelta(days=1)
    rows = []
    for n in range(count):
        kind = rng.choice(KINDS)
        answered = kind is EventType.ANSWERED
        rows.append(
            EventRow(
                type=kind,
                learner_key=f"learner-{n % 300}",
                cohort_id=1 + n % 3,
                course_id="digital-skills",
                lesson_id="agile-teams" if kind is not EventType.ENROLLED else None,
                question_id="q1" if answered else None,
                locale="sw" if kind is EventType.LESSON_DELIVERED else None,
                channel=rng.choice(["sms", "whatsapp", "telegram"]),
                correct=rng.random() < 0.6 if answered else None,
                attempt=1 if answered else None,
                detail={"kind": "single_choice", "value": "2"} if answered else None,
                occurred_at=start + timedelta(seconds=n),
            )
        )
    async with engine.begin() as conn:
        await append_events(conn, rows)


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
