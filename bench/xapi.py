"""xAPI forwarding to a real LRS (Ralph on 127.0.0.1): throughput against a bare loop, and lag.

    .venv/bin/python bench/xapi.py [--events 10000] [--batch 100] [--runs 3]
                                   [--rate 100] [--seconds 60]

Throughput, each run: a fresh SQLite store holding `--events` events (of the kinds a course
journey writes), a fresh Ralph (its file backend, appending), and `XapiForwarder` sending
the whole log in batches of `--batch`, timed from the first read to the last cursor commit.
In the same run, against another fresh Ralph, the baseline: a bare loop POSTing the same
statements, already mapped, in the same batches, with one httpx client (what the forwarder
could do at best). The order of the two alternates from run to run. Target: forwarder >=
0.9 x the bare loop.

Lag: a fresh store and Ralph; a writer appends events at a steady `--rate` per second (10
every 0.1 s) for `--seconds` while the forwarder runs as `serve` runs it (`run_forever`);
the lag of each statement is the LRS's `stored` minus the event's `timestamp`, read back
from the LRS. Target: p99 <= 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.analytics.xapi.log import events_after  # noqa: E402
from bot.analytics.xapi.statements import StatementMapper  # noqa: E402
from bot.lessons.loader import load_courses  # noqa: E402
from bot.store import migrate  # noqa: E402
from bot.store.db import create_engine, utcnow  # noqa: E402
from bot.store.events import append_events  # noqa: E402
from scheduler.lrs_client import LrsClient  # noqa: E402
from scheduler.xapi_forwarder import XapiForwarder  # noqa: E402
from tests.fakes.ralph_lrs import XAPI_HEADERS, RalphLrs  # noqa: E402
from tests.scheduler.xapi_journeys import synthetic_events  # noqa: E402

SECRET = "bench-xapi-secret-0123456789abcdef"
PUBLIC_URL = "http://learnbot-bench.test"


async def fresh_store(directory: Path, events: int):  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{directory / 'learnbot.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    at = utcnow() - timedelta(hours=1)
    async with engine.begin() as conn:
        for start in range(0, events, 5000):
            await append_events(conn, synthetic_events(min(5000, events - start), start, at))
    return engine


async def forwarder_run(directory: Path, events: int, batch: int, mapper: StatementMapper) -> float:
    """Statements per second forwarded by XapiForwarder."""
    engine = await fresh_store(directory, events)
    with RalphLrs(directory / "ralph") as lrs:
        client = LrsClient(lrs.endpoint, lrs.username, lrs.password)
        forwarder = XapiForwarder(engine, client, mapper, batch=batch)
        started = time.perf_counter()
        while await forwarder.forward_once():
            pass
        elapsed = time.perf_counter() - started
        await client.aclose()
        assert forwarder.stats.stored == events, forwarder.stats
    await engine.dispose()
    return events / elapsed


async def bare_run(directory: Path, events: int, batch: int, mapper: StatementMapper) -> float:
    """Statements per second POSTed by a bare loop: the same statements, already mapped."""
    engine = await fresh_store(directory, events)
    async with engine.connect() as conn:
        rows = await events_after(conn, 0, events)
    await engine.dispose()
    bodies = [
        json.dumps([mapper.statement(r) for r in rows[i : i + batch]], separators=(",", ":"))
        for i in range(0, len(rows), batch)
    ]
    with RalphLrs(directory / "ralph") as lrs:
        async with httpx.AsyncClient(
            auth=(lrs.username, lrs.password), headers=XAPI_HEADERS, timeout=60
        ) as client:
            started = time.perf_counter()
            for body in bodies:
                response = await client.post(
                    f"{lrs.endpoint}/statements",
                    content=body.encode(),
                    headers={"Content-Type": "application/json"},
                )
                response.raise_for_status()
            elapsed = time.perf_counter() - started
    return events / elapsed


async def lag_run(
    directory: Path, rate: int, seconds: float, mapper: StatementMapper
) -> list[float]:
    """Seconds from each event to its statement's arrival in the LRS, at a steady rate."""
    engine = await fresh_store(directory, 0)
    with RalphLrs(directory / "ralph") as lrs:
        client = LrsClient(lrs.endpoint, lrs.username, lrs.password)
        forwarder = XapiForwarder(engine, client, mapper)
        task = asyncio.create_task(forwarder.run_forever())
        written, step = 0, 0.1
        per_step = max(1, round(rate * step))
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            async with engine.begin() as conn:
                await append_events(conn, synthetic_events(per_step, written, utcnow()))
            written += per_step
            due = started + (written / per_step) * step
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        while forwarder.stats.stored < written and time.monotonic() - started < seconds + 60:
            await asyncio.sleep(0.1)
        forwarder.stop()
        await task
        await client.aclose()
        statements = lrs.statements(PUBLIC_URL)
    await engine.dispose()
    assert len(statements) == written, (len(statements), written)
    return [
        (
            datetime.fromisoformat(s["stored"]) - datetime.fromisoformat(s["timestamp"])
        ).total_seconds()
        for s in statements
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=100, help="events per second, lag run")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the lag run")
    parser.add_argument("--skip-lag", action="store_true")
    args = parser.parse_args()
    mapper = StatementMapper(PUBLIC_URL, SECRET, load_courses(ROOT / "lessons"))
    print(f"{args.events} events, batches of {args.batch}, Ralph 5.1 (file backend) on 127.0.0.1")
    ratios, ours, bares = [], [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            if run % 2:
                forwarded = await forwarder_run(Path(a), args.events, args.batch, mapper)
                bare = await bare_run(Path(b), args.events, args.batch, mapper)
            else:
                bare = await bare_run(Path(b), args.events, args.batch, mapper)
                forwarded = await forwarder_run(Path(a), args.events, args.batch, mapper)
        ours.append(forwarded)
        bares.append(bare)
        ratios.append(forwarded / bare)
        print(
            f"run {run}: forwarder {forwarded:.0f} statements/s, bare loop {bare:.0f}/s, "
            f"ratio {forwarded / bare:.3f}",
            flush=True,
        )
    print(
        f"median: forwarder {statistics.median(ours):.0f}/s, bare loop "
        f"{statistics.median(bares):.0f}/s, ratio {statistics.median(ratios):.3f} (target >= 0.9)"
    )
    if args.skip_lag:
        return
    with tempfile.TemporaryDirectory() as d:
        lags = await lag_run(Path(d), args.rate, args.seconds, mapper)
    print(
        f"lag at {args.rate} events/s for {args.seconds:.0f} s ({len(lags)} statements): "
        f"p50 {percentile(lags, 0.5):.2f} s, p99 {percentile(lags, 0.99):.2f} s, "
        f"max {max(lags):.2f} s (target p99 <= 5 s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
