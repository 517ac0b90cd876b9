"""p50/p95 of every console page's figures at scale, on SQLite or PostgreSQL: the analytics
layer alone (bench/console.py measures the pages over HTTP).

    .venv/bin/python bench/console_figures.py [--database-url URL] [--learners 100000]
        [--events 1000000] [--runs 15] [--keep PATH] [--reuse] [--only questions]

Fills a new database with the data set of bench/dataset.py (a temporary SQLite file unless
`--database-url` names a PostgreSQL database), then builds each page `--runs` times per reader
(an admin: all 20 cohorts; a trainer: 2 of them; an admin filtered to one cohort and 30
days), plus a cohort's report and a learner's timeline, and prints p50 and p95 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.dataset import SPAN_DAYS, START, build  # noqa: E402
from bot.analytics.console.pages import PAGES  # noqa: E402
from bot.analytics.console.report import cohort_report  # noqa: E402
from bot.analytics.console.timeline import learner_timeline  # noqa: E402
from bot.analytics.figures import FigureContext, Filters, Scope  # noqa: E402
from bot.analytics.pseudonym import pseudonym  # noqa: E402
from bot.lessons.loader import LoadedCourse, load_courses  # noqa: E402
from bot.store.db import create_engine  # noqa: E402

SECRET = "bench-console-secret-key"
NOW = START + timedelta(days=SPAN_DAYS)
PRICES = {"KE": 0.0079, "SN": 0.031, "TZ": 0.02, "UG": 0.025, "NG": 0.012}


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms"


async def measure(
    url: str, courses: dict[str, LoadedCourse], runs: int, only: str | None = None
) -> None:
    """Build every page `runs` times per reader and print p50/p95."""
    engine = create_engine(url)
    context = FigureContext(courses=courses, secret_key=SECRET, segment_prices=PRICES, now=NOW)
    readers = [
        ("admin", Scope(cohort_ids=None, is_admin=True), Filters()),
        ("trainer", Scope(cohort_ids=frozenset({3, 4})), Filters()),
        (
            "admin 1 cohort 30 days",
            Scope(cohort_ids=None, is_admin=True),
            Filters(since=(NOW - timedelta(days=30)).date(), cohort_id=5),
        ),
    ]
    async with engine.connect() as conn:
        key = (
            await conn.exec_driver_sql("SELECT learner_key FROM learners WHERE id = 4242")
        ).scalar_one()
    wanted = pseudonym(SECRET, key)
    jobs: list[tuple[str, Callable[[Any], Awaitable[Any]]]] = []
    for name, scope, filters in readers:
        for page in PAGES:
            jobs.append(
                (
                    f"{page.key:<10} {name}",
                    lambda c, p=page, s=scope, f=filters: p.build(c, f, s, context),
                )
            )
    jobs.append(("report     admin", lambda c: cohort_report(c, 5, readers[0][1], context)))
    jobs.append(("timeline   admin", lambda c: learner_timeline(c, wanted, readers[0][1], context)))
    jobs.append(
        ("timeline   trainer", lambda c: learner_timeline(c, wanted, readers[1][1], context))
    )
    worst = 0.0
    async with engine.connect() as conn:
        for label, job in jobs:
            if only is not None and only not in label:
                continue
            await job(conn)  # warm the caches (and SQLAlchemy's statement cache)
            samples = []
            for _ in range(runs):
                began = time.perf_counter()
                await job(conn)
                samples.append(time.perf_counter() - began)
            ordered = sorted(samples)
            worst = max(worst, ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))])
            print(f"{label:<36} {_ms(samples)}", flush=True)
    print(f"worst p95: {worst * 1000:.1f} ms")
    await engine.dispose()


def main() -> None:
    """Fill, then measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", type=Path, default=None, help="SQLite file to fill and keep")
    parser.add_argument("--reuse", action="store_true", help="measure an already filled database")
    parser.add_argument("--only", default=None, help="measure the jobs whose label has this")
    args = parser.parse_args()
    courses = load_courses(ROOT / "lessons")
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or (
            f"sqlite+aiosqlite:///{args.keep or Path(directory) / 'console.db'}"
        )
        if not args.reuse:
            print(asyncio.run(build(url, learners=args.learners, events=args.events)))
        if args.runs:
            asyncio.run(measure(url, courses, args.runs, args.only))


if __name__ == "__main__":
    main()
