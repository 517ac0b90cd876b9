"""p50/p95 of every console page's figures at scale, on SQLite or PostgreSQL.

    .venv/bin/python bench/console_figures.py [--database-url URL] [--learners 100000]
        [--runs 15] [--keep PATH] [--reuse] [--only questions]

Fills a freshly migrated database (a temporary SQLite file unless `--database-url` names an
empty PostgreSQL database) with `--learners` learners in 20 cohorts of the shipped course:
about 1.5 enrollments per learner, 10 events, 6 answers and 4 outbox rows per learner (at
100,000 learners: 150k enrollments, ~1M events, ~600k answers, ~400k deliveries), seeded,
spread over 120 days. Then builds each page `--runs` times per reader (an admin: all 20
cohorts; a trainer: 2 of them; an admin filtered to one cohort and the last 30 days), plus a
cohort's report and a learner's timeline, and prints p50 and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

from bot.analytics.console.pages import PAGES  # noqa: E402
from bot.analytics.console.report import cohort_report  # noqa: E402
from bot.analytics.console.timeline import learner_timeline  # noqa: E402
from bot.analytics.figures import FigureContext, Filters, Scope  # noqa: E402
from bot.analytics.pseudonym import pseudonym  # noqa: E402
from bot.lessons.loader import LoadedCourse, load_courses  # noqa: E402
from bot.lessons.models import FreeText, MultipleSelect, Rating, SingleChoice  # noqa: E402
from bot.store import migrate  # noqa: E402
from bot.store.db import create_engine  # noqa: E402

COURSE = "digital-skills"
COHORTS = 20
DAYS = 120
SECRET = "bench-console-secret-key"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BATCH = 20_000
CHANNELS = (("telegram", 0.5), ("sms", 0.3), ("whatsapp", 0.195), ("sandbox", 0.005))
COUNTRIES = (("KE", "+254"), ("SN", "+221"), ("TZ", "+255"), ("UG", "+256"), ("NG", "+234"))
ROLES = ("planner", "clerk", "manager", "engineer", "officer", "teacher", "nurse", None)
LOCALES = ("en", "fr", "sw", "ar", "pt", "es")
PRICES = {"KE": 0.0079, "SN": 0.031, "TZ": 0.02, "UG": 0.025, "NG": 0.012}

COLUMNS = {
    "learners": (
        "id learner_key channel address name locale status profile_role profile_country "
        "profile_gender created_at updated_at"
    ),
    "cohorts": ("id name join_code course_ids time_zone pacing status created_at open_to_sandbox"),
    "enrollments": (
        "id learner_id cohort_id course_id lesson_id status attempt reminders_sent "
        "enrolled_at completed_at"
    ),
    "events": (
        "occurred_at type learner_key cohort_id course_id lesson_id question_id locale channel "
        "correct attempt detail"
    ),
    "answers": (
        "enrollment_id course_id lesson_id question_id attempt response correct answered_at"
    ),
    "lesson_completions": "enrollment_id course_id lesson_id completed_at",
    "deliveries": (
        "learner_id enrollment_id lesson_id kind channel status priority locale due_at "
        "attempts error_code segments parts_sent created_at sent_at updated_at"
    ),
}
JSON_COLUMNS = {"course_ids", "detail"}


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def generate(
    learners: int, course: LoadedCourse, seed: int = 7
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) for the whole data set, in insertion order (parents first)."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=DAYS)
    for cohort_id in range(1, COHORTS + 1):
        yield (
            "cohorts",
            {
                "id": cohort_id,
                "name": f"Cohort {cohort_id}",
                "join_code": f"C{cohort_id:04d}",
                "course_ids": [COURSE],
                "time_zone": "Africa/Nairobi",
                "pacing": "self_paced",
                "status": "active",
                "created_at": start,
                "open_to_sandbox": cohort_id == 1,
            },
        )
    lessons = [course.lessons[x] for x in course.course.lessons]
    measuring = set(course.measuring_lessons())
    difficulty = {
        (lesson.id, q.id): rng.uniform(0.35, 0.9) for lesson in lessons for q in lesson.questions
    }
    enrollment_id = 0
    reply = 0
    for learner_id in range(1, learners + 1):
        channel = _pick(rng, CHANNELS)
        country, code = rng.choice(COUNTRIES)
        key = str(uuid.UUID(int=rng.getrandbits(128)))
        # Unique per learner, as the (channel, address) constraint wants.
        address = (
            f"{10**9 + learner_id}"
            if channel in ("telegram", "sandbox")
            else f"{code}7{learner_id:08d}"
        )
        status = _pick(
            rng, (("active", 0.85), ("stopped", 0.07), ("paused", 0.05), ("unreachable", 0.03))
        )
        created = start + timedelta(seconds=rng.randrange(DAYS * 86400 - 86400 * 10))
        yield (
            "learners",
            {
                "id": learner_id,
                "learner_key": key,
                "channel": channel,
                "address": address,
                "name": None,
                "locale": rng.choice(LOCALES),
                "status": status,
                "profile_role": rng.choice(ROLES),
                "profile_country": country if rng.random() < 0.9 else None,
                "profile_gender": _pick(rng, (("female", 0.47), ("male", 0.45), (None, 0.08))),
                "created_at": created,
                "updated_at": created,
            },
        )
        ability = rng.uniform(-0.25, 0.25)
        cohorts = [rng.randrange(1, COHORTS + 1)]
        if rng.random() < 0.5:
            cohorts.append((cohorts[0] + 7) % COHORTS + 1)
        for cohort_id in cohorts:
            enrollment_id += 1
            t = created + timedelta(minutes=rng.randrange(60 * 24))
            depth = min(len(lessons), int(rng.expovariate(1 / 1.7)))
            events: list[dict[str, Any]] = []
            children: list[tuple[str, dict[str, Any]]] = []  # after their enrollment row

            event = _event_log(events, key, cohort_id, channel)
            event("enrolled", t)
            completed = 0
            current = None
            for index in range(depth):
                lesson = lessons[index]
                at = t + timedelta(days=index + 1, minutes=rng.randrange(600))
                if at > NOW:
                    break
                current = lesson.id
                event("lesson_delivered", at, lesson_id=lesson.id, locale="en")
                children.extend(_delivery(rng, learner_id, enrollment_id, lesson.id, channel, at))
                done = index < depth - 1 or rng.random() < 0.8
                for question in lesson.questions if done else lesson.questions[:1]:
                    children.extend(
                        _answers(
                            rng,
                            event,
                            enrollment_id,
                            lesson.id,
                            question,
                            at,
                            difficulty[(lesson.id, question.id)] + ability,
                            graded_once=lesson.id in measuring,
                        )
                    )
                if done:
                    finished = at + timedelta(minutes=3)
                    event("lesson_completed", finished, lesson_id=lesson.id)
                    children.append(
                        (
                            "lesson_completions",
                            {
                                "enrollment_id": enrollment_id,
                                "course_id": COURSE,
                                "lesson_id": lesson.id,
                                "completed_at": finished,
                            },
                        )
                    )
                    completed += 1
            if rng.random() < 0.3:
                event("profile_updated", t + timedelta(minutes=5), detail={"field": "role"})
            yield (
                "enrollments",
                {
                    "id": enrollment_id,
                    "learner_id": learner_id,
                    "cohort_id": cohort_id,
                    "course_id": COURSE,
                    "lesson_id": current,
                    "status": "completed" if completed == len(lessons) else "active",
                    "attempt": 0,
                    "reminders_sent": 0,
                    "enrolled_at": t,
                    "completed_at": None,
                },
            )
            yield from children
            for row in events:
                yield "events", row
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            reply += 1
            at = created + timedelta(days=rng.randrange(10))
            yield (
                "deliveries",
                _delivery_row(
                    learner_id, None, f"reply:{reply}", "reply", channel, "sent", at, None, None
                ),
            )


def _event_log(
    events: list[dict[str, Any]], key: str, cohort_id: int, channel: str
) -> Callable[..., None]:
    """A function appending one enrollment's events to `events`."""

    def event(type_: str, at: datetime, **values: Any) -> None:
        events.append(
            {
                "occurred_at": at,
                "type": type_,
                "learner_key": key,
                "cohort_id": cohort_id,
                "course_id": COURSE,
                "lesson_id": None,
                "question_id": None,
                "locale": None,
                "channel": channel,
                "correct": None,
                "attempt": None,
                "detail": None,
                **values,
            }
        )

    return event


def _answers(
    rng: random.Random,
    event: Callable[..., None],
    enrollment_id: int,
    lesson_id: str,
    question: Any,
    at: datetime,
    chance: float,
    *,
    graded_once: bool,
) -> Iterator[tuple[str, dict[str, Any]]]:
    attempts: list[tuple[str, bool | None]] = []
    if isinstance(question, Rating):
        attempts.append((str(rng.randint(1, 5)), None))
        kind = {"kind": "rating"}
    elif isinstance(question, FreeText):
        attempts.append((rng.choice(("Test early", "Ask users", "Share data")), None))
        kind = {"kind": "free_text"}
    else:
        kind = {"kind": question.kind}
        right = _right_answer(question)
        wrong = "2" if right != "2" else "1"
        if question.kind == "true_false":
            wrong = "true" if right == "false" else "false"
        first = rng.random() < chance
        attempts.append((right if first else wrong, first))
        if not first and not graded_once:
            attempts.append((right, True))
    for attempt, (value, correct) in enumerate(attempts, start=1):
        when = at + timedelta(minutes=attempt)
        detail = dict(kind) if kind["kind"] == "free_text" else {**kind, "value": value}
        event(
            "answered",
            when,
            lesson_id=lesson_id,
            question_id=question.id,
            correct=correct,
            attempt=attempt,
            detail=detail,
            locale="en",
        )
        yield (
            "answers",
            {
                "enrollment_id": enrollment_id,
                "course_id": COURSE,
                "lesson_id": lesson_id,
                "question_id": question.id,
                "attempt": attempt,
                "response": value,
                "correct": correct,
                "answered_at": when,
            },
        )


def _right_answer(question: Any) -> str:
    if isinstance(question, SingleChoice):
        return str(question.answer)
    if isinstance(question, MultipleSelect):
        return ",".join(str(x) for x in sorted(question.answers))
    return "true" if question.answer else "false"


def _delivery(
    rng: random.Random,
    learner_id: int,
    enrollment_id: int,
    lesson_id: str,
    channel: str,
    at: datetime,
) -> Iterator[tuple[str, dict[str, Any]]]:
    status, code = "sent", None
    segments = rng.randint(2, 5) if channel == "sms" else None
    if channel != "telegram":
        status = _pick(
            rng, (("delivered", 0.88), ("read", 0.04), ("failed", 0.05), ("undelivered", 0.03))
        )
        if status in ("failed", "undelivered"):
            code = rng.choice(("30003", "30005", "30007", "21610", "63016"))
    yield (
        "deliveries",
        _delivery_row(
            learner_id, enrollment_id, lesson_id, "lesson", channel, status, at, code, segments
        ),
    )
    if channel == "whatsapp" and rng.random() < 0.3:
        yield (
            "deliveries",
            _delivery_row(
                learner_id, enrollment_id, lesson_id, "template", channel, "read", at, None, None
            ),
        )
    if rng.random() < 0.35:
        yield (
            "deliveries",
            _delivery_row(
                learner_id,
                enrollment_id,
                lesson_id,
                "reminder",
                channel,
                "sent",
                at + timedelta(hours=20),
                None,
                1 if channel == "sms" else None,
            ),
        )


def _delivery_row(
    learner_id: int,
    enrollment_id: int | None,
    lesson_id: str,
    kind: str,
    channel: str,
    status: str,
    at: datetime,
    code: str | None,
    segments: int | None,
) -> dict[str, Any]:
    return {
        "learner_id": learner_id,
        "enrollment_id": enrollment_id,
        "lesson_id": lesson_id,
        "kind": kind,
        "channel": channel,
        "status": status,
        "priority": 1,
        "locale": "en",
        "due_at": at,
        "attempts": 1,
        "error_code": code,
        "segments": segments,
        "parts_sent": 0,
        "created_at": at,
        "sent_at": None if status in ("failed", "undelivered") else at,
        "updated_at": at,
    }


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLAlchemy's SQLite DateTime format, in UTC (UtcDateTime stores naive UTC there).
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _pg_value(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS and value is not None:
        return json.dumps(value)
    return value


async def fill(url: str, learners: int, course: LoadedCourse) -> dict[str, int]:
    """Write the data set in batches; return rows per table."""
    backend = make_url(url).get_backend_name()
    batches: dict[str, list[tuple[Any, ...]]] = {table: [] for table in COLUMNS}
    counts = dict.fromkeys(COLUMNS, 0)
    if backend == "sqlite":
        database = sqlite3.connect(make_url(url).database or "")
        database.execute("PRAGMA synchronous=OFF")

        async def flush(table: str) -> None:
            names = COLUMNS[table].split()
            marks = ",".join("?" * len(names))
            database.executemany(
                f"INSERT INTO {table} ({','.join(names)}) VALUES ({marks})", batches[table]
            )
    else:
        import asyncpg  # type: ignore[import-untyped]

        pg_url = make_url(url).set(drivername="postgresql")
        pg = await asyncpg.connect(pg_url.render_as_string(hide_password=False))

        async def flush(table: str) -> None:
            await pg.copy_records_to_table(
                table, records=batches[table], columns=COLUMNS[table].split()
            )

    order = list(COLUMNS)  # parents first: flush every earlier table before a later one
    for table, row in generate(learners, course):
        names = COLUMNS[table].split()
        convert = (lambda _c, v: _sqlite_value(v)) if backend == "sqlite" else _pg_value
        batches[table].append(tuple(convert(n, row[n]) for n in names))
        counts[table] += 1
        if len(batches[table]) >= BATCH:
            for earlier in order[: order.index(table) + 1]:
                if batches[earlier]:
                    await flush(earlier)
                    batches[earlier] = []
    for table in order:
        if batches[table]:
            await flush(table)
    if backend == "sqlite":
        database.commit()
        database.execute("ANALYZE")
        database.close()
    else:
        for table in ("learners", "cohorts", "enrollments", "deliveries"):
            await pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        # VACUUM sets the visibility map, as autovacuum does on a live database: without it
        # right after a bulk COPY, PostgreSQL cannot use index-only scans.
        await pg.execute("VACUUM ANALYZE")
        await pg.close()
    return counts


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
            migrate.upgrade(url)
            began = time.perf_counter()
            counts = asyncio.run(fill(url, args.learners, courses[COURSE]))
            seconds = time.perf_counter() - began
            print(", ".join(f"{n:,} {t}" for t, n in counts.items()), f"in {seconds:.0f} s")
        if args.runs:
            asyncio.run(measure(url, courses, args.runs, args.only))


if __name__ == "__main__":
    main()
