"""Crash test: SIGKILL the serving process at random points of a push, several times.

Every learner gets the lesson; a learner gets it twice only if their delivery was in flight
(claimed, not yet written back) at a kill, and never more than once per such kill. The
workers run with the channel's own limits and batch sizing, as `learnbot serve` does; each
kill may make at most the dispatcher's concurrent sends (`MAX_CONCURRENT_SENDS`) go twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import ChannelName
from bot.store import migrate
from bot.store.db import create_engine, utcnow
from bot.store.tables import deliveries, enrollments, learners
from scheduler.dispatcher import MAX_CONCURRENT_SENDS
from tests.scheduler.outbox_rows import add_cohort, lesson_row, write_course

ROOT = Path(__file__).resolve().parents[2]
LEARNERS = 500
KILLS = 5
# Workers' limits: Twilio short code (100 segments/s), Telegram's own (30/s, 1/s per chat).
RATES = {ChannelName.SMS: "100", ChannelName.TELEGRAM: "30"}


async def push(
    engine: AsyncEngine, count: int, channel: ChannelName = ChannelName.SMS
) -> list[str]:
    """`count` enrolled learners, each with the lesson `users` due now: their addresses."""
    now = utcnow()
    if channel is ChannelName.TELEGRAM:
        addresses = [str(700_000_000 + n) for n in range(count)]
    else:
        addresses = [f"+2547{n:08d}" for n in range(count)]
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        await conn.execute(
            insert(learners),
            [
                {
                    "learner_key": f"key-{n}",
                    "channel": channel.value,
                    "address": address,
                    "locale": "en",
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
                for n, address in enumerate(addresses)
            ],
        )
        ids = [row.id for row in await conn.execute(select(learners.c.id).order_by("id"))]
        await conn.execute(
            insert(enrollments),
            [
                {
                    "learner_id": learner_id,
                    "cohort_id": cohort,
                    "course_id": "basics",
                    "status": "active",
                    "attempt": 0,
                    "reminders_sent": 0,
                    "enrolled_at": now,
                }
                for learner_id in ids
            ],
        )
        pairs = (await conn.execute(select(enrollments.c.id, enrollments.c.learner_id))).all()
        await conn.execute(
            insert(deliveries),
            [lesson_row(learner, enrollment, channel=channel) for enrollment, learner in pairs],
        )
    return addresses


def start_worker(url: str, log: Path, lessons: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A dispatcher process (see dispatch_worker.py)."""
    command = [sys.executable, "-m", "tests.scheduler.dispatch_worker", url, str(log), str(lessons)]
    return subprocess.Popen([*command, *extra], cwd=ROOT)


def lines(log: Path) -> int:
    """Lessons logged so far."""
    return log.read_bytes().count(b"\n") if log.exists() else 0


async def in_flight(engine: AsyncEngine) -> set[str]:
    """Addresses whose delivery is claimed but not written back."""
    query = (
        select(learners.c.address)
        .join(deliveries, deliveries.c.learner_id == learners.c.id)
        .where(deliveries.c.status == "sending")
    )
    async with engine.connect() as conn:
        return {row.address for row in await conn.execute(query)}


async def unsent(engine: AsyncEngine) -> int:
    """Deliveries not yet sent."""
    query = select(func.count()).where(deliveries.c.status != "sent")
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def wait_until_sent(engine: AsyncEngine, deadline: float) -> None:
    """Poll until every delivery is sent, or fail at `deadline`."""
    while await unsent(engine):
        assert time.monotonic() < deadline, "the push did not finish in time"
        await asyncio.sleep(0.2)


def duplicates_per_kill(log: Path, killed: list[int]) -> list[int]:
    """For each killed worker (by pid), how many of its lessons a later worker sent again."""
    sends = [line.split() for line in log.read_text().splitlines()]
    order = {str(pid): n for n, pid in enumerate(killed)}
    last_worker: dict[str, int] = {}  # address -> the latest worker that sent it
    for address, pid in sends:
        last_worker[address] = max(last_worker.get(address, -1), order.get(pid, len(killed)))
    counts = [0] * len(killed)
    seen: set[tuple[str, str]] = set()
    for address, pid in sends:
        assert (address, pid) not in seen, f"{address} got the lesson twice from one process"
        seen.add((address, pid))
        if pid in order and last_worker[address] > order[pid]:
            counts[order[pid]] += 1
    return counts


def check_log(log: Path, addresses: list[str], exposed: Counter[str]) -> tuple[int, int]:
    """Everyone got the lesson; duplicates only for deliveries in flight at a kill."""
    got = Counter(line.split()[0] for line in log.read_text().splitlines())
    assert set(got) == set(addresses), f"missing: {len(set(addresses) - set(got))}"
    duplicates = {address: n - 1 for address, n in got.items() if n > 1}
    for address, extra in duplicates.items():
        assert extra <= exposed[address], f"{address} got the lesson {extra + 1} times"
    return sum(duplicates.values()), sum(exposed.values())


@pytest.mark.slow
@pytest.mark.parametrize("channel", [ChannelName.SMS, ChannelName.TELEGRAM])
async def test_kill_9_during_a_push_loses_nothing_and_duplicates_only_in_flight(
    tmp_path: Path, channel: ChannelName
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    lessons = write_course(tmp_path)
    log = tmp_path / "sent.log"
    rng = random.Random(2024)
    deadline = time.monotonic() + 90
    limits = ("--production-limits", "--rate", RATES[channel], "--channel", channel.value)
    try:
        addresses = await push(engine, LEARNERS, channel)
        exposed: Counter[str] = Counter()  # address -> kills that caught it in flight
        killed: list[int] = []
        for _ in range(KILLS):
            worker = start_worker(url, log, lessons, *limits, "--lease", "2")
            before = lines(log)
            while lines(log) == before and worker.poll() is None:  # until it is sending
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            # Up to a whole claim's worth of sending (two seconds of the channel's rate).
            await asyncio.sleep(rng.uniform(0.3, 2.5))
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            killed.append(worker.pid)
            exposed.update(await in_flight(engine))
        assert await unsent(engine) > 0, "the kills should have come during the push"
        final = start_worker(
            url, log, lessons, "--channel", channel.value, "--batch", "200", "--lease", "2"
        )
        try:
            await wait_until_sent(engine, deadline)
        finally:
            final.send_signal(signal.SIGKILL)
            final.wait()
        duplicates, exposed_total = check_log(log, addresses, exposed)
        per_kill = duplicates_per_kill(log, killed)
        print(
            f"\ncrash test ({channel}): {LEARNERS} learners, {KILLS} kills, {exposed_total} "
            f"deliveries claimed at the kills, {duplicates} duplicate sends; per kill: {per_kill}"
        )
        assert sum(per_kill) == duplicates
        assert max(per_kill) <= MAX_CONCURRENT_SENDS <= 32
    finally:
        await engine.dispose()
