"""Console pages at scale: p50 and p95 per page, on SQLite and PostgreSQL.

    .venv/bin/python bench/console.py [--database PATH_OR_URL] [--learners 100000]
                                      [--events 1000000] [--requests 20] [--reuse]

Builds the data set of `bench/dataset.py` (100,000 learners, 1,000,000 events with the
defaults) into a new database (`--reuse`: one built before), sets passwords for its admin
and its first trainer, and serves the real app (`Runtime.app()`: every route, the console
with the analytics layer's pages) through httpx's ASGI transport, in this process, without
the scheduler. Each reader signs in through the sign-in form, then asks each page
`--requests` times (after one untimed request, so the first reading of the database's pages
does not count) without filters, and with a cohort and a 30-day range. Prints p50 and p95
per page and reader (milliseconds; target: p95 <= 300 ms) and the bytes of each page.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.dataset import build  # noqa: E402
from bot.analytics.console.pages import PAGES  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import build_runtime  # noqa: E402
from bot.store.tables import cohorts, users  # noqa: E402
from bot.trainers.passwords import set_password  # noqa: E402

PASSWORD = "bench-console-password-1"
PUBLIC_URL = "http://console.bench"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def signed_in(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/console/sign-in")
    token = _CSRF.search(page.text)
    assert token, "no CSRF token on the sign-in page"
    done = await client.post(
        "/console/sign-in",
        data={"csrf_token": token[1], "email": email, "password": PASSWORD, "next": "/console"},
    )
    assert done.status_code in (302, 303), (done.status_code, done.text[:300])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(url: str, requests: int) -> list[tuple[str, str, float, float, int]]:
    settings = Settings(
        database_url=url,
        public_url=PUBLIC_URL,
        secret_key="bench-console-secret-key-0123456789",
        lessons_dir=ROOT / "lessons",
        locales_dir=ROOT / "locales",
    )
    runtime = await build_runtime(settings)
    async with runtime.engine.begin() as conn:
        admin = (await conn.execute(select(users.c.email).where(users.c.role == "admin"))).scalar()
        trainer_id, trainer = (
            await conn.execute(
                select(users.c.id, users.c.email)
                .where(users.c.role == "trainer")
                .order_by(users.c.id)
                .limit(1)
            )
        ).one()
        cohort = (
            await conn.execute(select(cohorts.c.id).where(cohorts.c.owner_id == trainer_id))
        ).scalar()
        for email in (admin, trainer):
            await set_password(conn, email, PASSWORD)
    app = runtime.app()
    rows = []
    filtered = {"cohort": str(cohort), "since": "2026-05-01", "until": "2026-05-31"}
    figure_pages = [f"/console/{page.key}" for page in PAGES]
    asks = [("/console", {}), *((path, {}) for path in figure_pages)]
    asks += [(path, filtered) for path in figure_pages]
    asks.append((f"/console/cohorts/{cohort}", {}))
    for reader in (admin, trainer):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await signed_in(client, reader)
            for path, params in asks:
                first = await client.get(path, params=params)
                assert first.status_code == 200, (path, first.status_code, first.text[:300])
                times = []
                for _ in range(requests):
                    started = time.perf_counter()
                    response = await client.get(path, params=params)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
                row = (
                    "admin" if reader == admin else "trainer",
                    path + (" (a cohort, 31 days)" if params else ""),
                    statistics.median(times),
                    percentile(times, 0.95),
                    len(first.content),
                )
                rows.append(row)
                print(
                    f"{row[0]:8} {row[1]:45} p50 {row[2]:7.1f} ms  p95 {row[3]:7.1f} ms  "
                    f"{row[4] / 1024:6.1f} KB",
                    flush=True,
                )
    await runtime.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=None, help="SQLite path or PostgreSQL URL")
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="the database is built already")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        target = args.database or str(Path(scratch) / "console.db")
        url = target if "://" in target else f"sqlite+aiosqlite:///{target}"
        if not args.reuse:
            began = time.perf_counter()
            counts = await build(url, learners=args.learners, events=args.events)
            print(f"built {counts} in {time.perf_counter() - began:.0f} s", flush=True)
        print(f"{make_url(url).get_backend_name()}: {args.requests} requests per page and reader")
        rows = await measure(url, args.requests)
    worst = max(rows, key=lambda row: row[3])
    print(f"slowest p95: {worst[1]} ({worst[0]}) {worst[3]:.1f} ms (target <= 300 ms)")


if __name__ == "__main__":
    asyncio.run(main())
