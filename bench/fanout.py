"""Fan-out of one scheduled lesson to many learners: planning into the outbox, then dispatch.

    .venv/bin/python bench/fanout.py [--learners 100000] [--database URL]

One run on a fresh store: a temporary SQLite file, or, with `--database
postgresql+asyncpg://user@host/db`, a new database on that server, dropped afterwards:

1. `--learners` learners of one daily cohort, all due now (scheduler.seed);
2. plan: `scheduler.plan_job.plan_once` puts their deliveries into the outbox (timed);
3. baseline: the same rows are deleted and inserted again by one bare executemany (timed);
   the ratio plan / bare is the planner's overhead;
4. dispatch: one `Dispatcher` sends them all through the sandbox channel with no rate
   limit (timed), counting deliveries, provider messages and store writes (statements);
5. peak RSS of the process.

As in `learnbot serve` (`bot.runtime.freeze_startup_heap`), the heap loaded at startup
(courses, catalogs, libraries) is frozen out of the garbage collector's sight before any
work: without it, every full collection walks it again (dispatch about 2x slower).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import delete, func, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.channels.sandbox import SandboxChannel  # noqa: E402
from bot.dialogue import Dialogue  # noqa: E402
from bot.domain import ChannelName  # noqa: E402
from bot.i18n import UiCatalogs  # noqa: E402
from bot.lessons.catalogs import load_translations  # noqa: E402
from bot.lessons.loader import load_courses  # noqa: E402
from bot.store import migrate  # noqa: E402
from bot.store.db import create_engine, utcnow  # noqa: E402
from bot.store.tables import deliveries  # noqa: E402
from scheduler.dispatcher import BatchResult, Dispatcher  # noqa: E402
from scheduler.plan_job import PAGE_SIZE, plan_once  # noqa: E402
from scheduler.seed import seed_cohort  # noqa: E402

COURSE = "digital-skills"


async def run(learners: int, database_url: str) -> None:
    """Seed, plan, re-insert bare, dispatch; print the figures."""
    await asyncio.to_thread(migrate.upgrade, database_url)
    engine = create_engine(database_url)
    courses = load_courses(ROOT / "lessons")
    content = load_translations(courses.values(), ROOT / "locales")
    dialogue = Dialogue(engine, courses, content, UiCatalogs(ROOT / "locales"))
    # What serve does once built; not by importing bot.runtime, whose web and provider
    # libraries would add some 30 MB to the peak RSS measured here.
    gc.collect()
    gc.freeze()
    now = utcnow()
    try:
        started = time.perf_counter()
        await seed_cohort(engine, learners_count=learners, course_id=COURSE, now=now)
        print(f"seeded {learners} learners in {time.perf_counter() - started:.2f} s")

        started = time.perf_counter()
        stats = await plan_once(engine, courses, now=now, misfire_grace=timedelta(hours=6))
        plan_s = time.perf_counter() - started
        async with engine.connect() as conn:
            planned = (await conn.execute(select(deliveries))).all()
        # Every column but the id, less those NULL in every row (NULL is what an insert
        # leaves them anyway): the dicts of 100,000 rows are most of this bench's peak RSS.
        columns = [
            name
            for index, name in enumerate(deliveries.c.keys())
            if name != "id" and any(row[index] is not None for row in planned)
        ]
        rows = [
            dict(zip(columns, (row._mapping[c] for c in columns), strict=True)) for row in planned
        ]
        del planned
        async with engine.begin() as conn:
            await conn.execute(delete(deliveries))
        started = time.perf_counter()
        async with engine.begin() as conn:
            # In pages of the planner's size, as plan_once writes them.
            for first in range(0, len(rows), PAGE_SIZE):
                await conn.execute(insert(deliveries), rows[first : first + PAGE_SIZE])
        bare_s = time.perf_counter() - started
        del rows
        print(f"peak RSS after planning: {peak_mb():.0f} MB")
        print(
            f"plan: {stats.inserted} deliveries in {plan_s:.2f} s; bare executemany of the "
            f"same rows {bare_s:.2f} s; ratio {plan_s / bare_s:.2f}x (target <= 3x, <= 2 s)"
        )

        sandbox = SandboxChannel()
        dispatcher = Dispatcher(engine, {ChannelName.SANDBOX: sandbox}, dialogue, batch_size=1000)
        started = time.perf_counter()
        result: BatchResult = await dispatcher.run_until_idle()
        dispatch_s = time.perf_counter() - started
        batches = (result.claimed + 999) // 1000
        async with engine.connect() as conn:
            sent = (
                await conn.execute(select(func.count()).where(deliveries.c.status == "sent"))
            ).scalar_one()
        print(
            f"dispatch: {result.sent} deliveries ({result.messages} messages) in "
            f"{dispatch_s:.2f} s = {result.sent / dispatch_s:,.0f} deliveries/s, "
            f"{result.messages / dispatch_s:,.0f} messages/s (target >= 5,000/s); "
            f"{result.statements} store writes in {batches} batches of 1000 "
            f"(+ {batches} claims); {sent} rows sent in the store"
        )
    finally:
        await dialogue.aclose()
        await engine.dispose()
    print(f"peak RSS: {peak_mb():.0f} MB (target <= 300 MB)")


def peak_mb() -> float:
    """The process's peak resident set so far, in MB (ru_maxrss is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_on_fresh_postgres(learners: int, server_url: str) -> None:
    """Run on a new database of the PostgreSQL server `server_url` names, dropped afterwards.

    A database left over from an earlier run would hold its outbox rows: every figure
    would be wrong, so the bench never runs on the named database itself.
    """
    url = make_url(server_url)
    name = f"learnbot_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await run(learners, url.set(database=name).render_as_string(hide_password=False))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def main() -> None:
    """Parse the arguments and run once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument(
        "--database",
        default=None,
        help="a PostgreSQL URL: the bench runs on a new database of that server, dropped after",
    )
    args = parser.parse_args()
    if args.database:
        print(f"fan-out of {args.learners} learners on {args.database.split('@')[-1]} (fresh db)")
        asyncio.run(run_on_fresh_postgres(args.learners, args.database))
        return
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'fanout.db'}"
        print(f"fan-out of {args.learners} learners on {url}")
        asyncio.run(run(args.learners, url))


if __name__ == "__main__":
    main()
