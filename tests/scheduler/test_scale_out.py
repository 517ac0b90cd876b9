"""Scale-out: three dispatcher processes on one PostgreSQL share a 20,000-learner push exactly."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.scheduler.outbox_rows import write_course
from tests.scheduler.test_crash import push, start_worker, wait_until_sent

LEARNERS = 20_000
PROCESSES = 3


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_three_processes_send_each_lesson_exactly_once(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    addresses = await push(engine, LEARNERS)
    lessons = write_course(tmp_path)
    logs = [tmp_path / f"sent-{n}.log" for n in range(PROCESSES)]
    started = time.monotonic()
    workers = [
        start_worker(database_url, log, lessons, "--batch", "500", "--lease", "30") for log in logs
    ]
    try:
        await wait_until_sent(engine, started + 30)
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait()
    per_process = [log.read_text().splitlines() if log.exists() else [] for log in logs]
    got = Counter(line.split()[0] for lines in per_process for line in lines)
    assert set(got) == set(addresses)  # zero missing
    assert [a for a, n in got.items() if n > 1] == []  # zero duplicates
    assert sum(1 for lines in per_process if lines) >= 2  # the work was shared
    print(
        f"\nscale-out: {LEARNERS} learners over {PROCESSES} processes in {elapsed:.1f} s "
        f"(shares {[len(lines) for lines in per_process]}), 0 duplicates, 0 missing"
    )
