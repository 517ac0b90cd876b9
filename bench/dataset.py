"""A realistic learnbot database at scale, for the export and console benchmarks.

    .venv/bin/python bench/dataset.py [PATH_OR_URL] [--learners 100000] [--events 1000000]
                                      [--seed 1] [--force]

Builds the schema through the real migrations (`bot.store.migrate.upgrade`), then fills it
with seeded, deterministic data for the shipped course in `lessons/`: staff users, ~20
cohorts with owners, learners on every channel and locale with profiles (some stopped,
paused, unreachable or deleted), ~1.5 enrollments per learner, their event log in time
order (enrolled, language and profile choices, lesson deliveries, answers with their
values, lesson and course completions, stops, pauses, deletions), the answers, the
outbox (lessons, reminders, replies; sent, delivered, read or failed) and the lesson
completions. Rows go in with large executemany batches. With the defaults: 100,000
learners, exactly 1,000,000 events, 149,234 enrollments, 490,425 answers and 408,497
deliveries, in about 2 minutes on SQLite (each table's time is logged, the counts printed).
The budget of events, not a target per table, decides the rest: with 1.5 enrollments per
learner, joining, deliveries and completions take half the log.

Reuse from another benchmark:

    from bench.dataset import build
    counts = await build("sqlite+aiosqlite:////tmp/learnbot-bench.db")
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import logging
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.domain import (  # noqa: E402
    ChannelName,
    DeliveryKind,
    DeliveryStatus,
    EventType,
    LearnerStatus,
    QuestionKind,
)
from bot.lessons.loader import LoadedCourse, load_courses, teaching_by_course  # noqa: E402
from bot.lessons.models import Lesson, MultipleSelect, SingleChoice, TrueFalse  # noqa: E402
from bot.store import migrate, rollups  # noqa: E402
from bot.store import tables as t  # noqa: E402
from bot.store.db import create_engine, utcnow  # noqa: E402
from scheduler.schedule import parse_schedule  # noqa: E402

log = logging.getLogger("bench.dataset")

COURSE_ID = "digital-skills"
DEFAULT_PATH = Path("/tmp/learnbot-bench.db")
BATCH = 20_000  # rows per executemany
COHORTS = 20
TRAINERS = 8
START = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)  # the first cohort opens
SPAN_DAYS = 300  # enrollments spread over this many days

CHANNELS = [
    (ChannelName.SMS, 0.36),
    (ChannelName.WHATSAPP, 0.30),
    (ChannelName.TELEGRAM, 0.32),
    (ChannelName.SANDBOX, 0.02),  # /sandbox visitors: left out of exports by default
]
LOCALES = [("en", 0.30), ("fr", 0.20), ("sw", 0.15), ("ar", 0.10), ("es", 0.10), ("pt", 0.10)]
# Country, dialling code, time zone: where the training unit's learners are.
COUNTRIES = [
    ("KE", "254", "Africa/Nairobi", 0.18),
    ("TZ", "255", "Africa/Dar_es_Salaam", 0.10),
    ("UG", "256", "Africa/Kampala", 0.07),
    ("SN", "221", "Africa/Dakar", 0.10),
    ("CI", "225", "Africa/Abidjan", 0.08),
    ("CD", "243", "Africa/Kinshasa", 0.07),
    ("MA", "212", "Africa/Casablanca", 0.06),
    ("EG", "20", "Africa/Cairo", 0.06),
    ("JO", "962", "Asia/Amman", 0.04),
    ("MZ", "258", "Africa/Maputo", 0.06),
    ("BR", "55", "America/Sao_Paulo", 0.06),
    ("PE", "51", "America/Lima", 0.05),
    ("CO", "57", "America/Bogota", 0.04),
    ("GB", "44", "Europe/London", 0.03),
]
COUNTRY_WEIGHTS = [(c[:3], c[3]) for c in COUNTRIES]
ROLES = [("technical", 0.35), ("administrative", 0.25), ("manager", 0.22), ("elected", 0.08)]
ROLES += [("other", 0.10)]
GENDERS = [("female", 0.46), ("male", 0.44), ("other", 0.02), ("undisclosed", 0.08)]
STATUSES = [
    (LearnerStatus.ACTIVE, 0.85),
    (LearnerStatus.STOPPED, 0.06),
    (LearnerStatus.PAUSED, 0.04),
    (LearnerStatus.UNREACHABLE, 0.02),
    (LearnerStatus.DELETED, 0.03),
]
REFLECTIONS = [
    "I will ask the people who use our service before we change the form.",
    "We should publish the budget data as a spreadsheet, not a scanned PDF.",
    "Small releases every two weeks would help my team, but procurement is slow.",
    "Nitawauliza wananchi kabla ya kubadilisha fomu.",
    "Je vais tester le nouveau formulaire avec cinq usagers.",
    "Vamos a probar el servicio con los usuarios antes de lanzarlo.",
    "سأطلب رأي المواطنين قبل تغيير الخدمة",
    "Vou pedir feedback aos cidadãos antes de mudar o serviço.",
]
FAILURES = {  # channel -> provider error codes a failed delivery carries
    ChannelName.SMS: ["30003", "30005", "30006", "21610"],
    ChannelName.WHATSAPP: ["63016", "131026", "131047"],
    ChannelName.TELEGRAM: ["403", "400"],
    ChannelName.SANDBOX: ["unreachable"],
}


@dataclass(frozen=True)
class QuestionPlan:
    """What the generator needs of one question: its id, kind and right answer."""

    id: str
    kind: str
    options: int  # choices offered (2 for true/false, 5 for a rating, 0 for free text)
    right: str | None  # the normalised right response, None when ungraded


@dataclass(frozen=True)
class LessonPlan:
    """A lesson of the shipped course, as the generator walks it."""

    id: str
    teaching: bool
    questions: tuple[QuestionPlan, ...]


def course_plan(course: LoadedCourse) -> list[LessonPlan]:
    """The shipped course's lessons in order, with their questions."""
    teaching = set(course.teaching_lessons())
    return [
        LessonPlan(lesson_id, lesson_id in teaching, tuple(_questions(lesson)))
        for lesson_id, lesson in course.lessons.items()
    ]


def _questions(lesson: Lesson) -> Iterator[QuestionPlan]:
    for q in lesson.questions:
        if isinstance(q, SingleChoice):
            yield QuestionPlan(q.id, q.kind, len(q.options), str(q.answer))
        elif isinstance(q, TrueFalse):
            yield QuestionPlan(q.id, q.kind, 2, "1" if q.answer else "2")
        elif isinstance(q, MultipleSelect):
            right = ",".join(str(a) for a in sorted(q.answers))
            yield QuestionPlan(q.id, q.kind, len(q.options), right)
        elif q.kind == QuestionKind.RATING:
            yield QuestionPlan(q.id, q.kind, 5, None)
        else:
            yield QuestionPlan(q.id, q.kind, 0, None)


class Picker:
    """Seeded weighted choices, fast enough for millions of draws."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def weighted(self, pairs: Sequence[tuple[Any, float]]) -> Any:
        """One value of `pairs`, drawn by its weight."""
        total = 0.0
        draw = self.rng.random() * sum(weight for _, weight in pairs)
        for value, weight in pairs:
            total += weight
            if draw < total:
                return value
        return pairs[-1][0]


@dataclass
class Learner:
    """The generator's view of one learner row."""

    id: int
    key: str
    channel: ChannelName
    address: str | None
    locale: str | None
    status: LearnerStatus
    country: str | None


@dataclass
class Counts:
    """Rows written per table."""

    users: int = 0
    cohorts: int = 0
    learners: int = 0
    enrollments: int = 0
    events: int = 0
    answers: int = 0
    deliveries: int = 0
    lesson_completions: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        tables = ", ".join(
            f"{name} {value:,}" for name, value in vars(self).items() if name != "seconds"
        )
        return f"{tables} in {self.seconds:.1f} s"


async def build(
    url: str, *, learners: int = 100_000, events: int = 1_000_000, seed: int = 1
) -> Counts:
    """Migrate the (empty) database at `url` and fill it with seeded data at scale."""
    started = time.perf_counter()
    await ensure_database(url)
    await asyncio.to_thread(migrate.upgrade, url)
    course = load_courses(ROOT / "lessons")[COURSE_ID]
    generator = _Generator(random.Random(seed), course_plan(course), learners, events)
    engine = create_engine(url, foreign_keys=False)  # rows go in parents first anyway
    counts = Counts()
    try:
        async with engine.begin() as conn:
            if (await conn.execute(select(func.count()).select_from(t.events))).scalar_one():
                raise SystemExit(f"{url}: the events table is not empty; build into a new one")

            async def insert(table: Table, rows: Iterator[dict[str, Any]]) -> int:
                began = time.perf_counter()
                written = 0
                for batch in _batches(rows, BATCH):
                    await conn.execute(table.insert(), batch)
                    written += len(batch)
                log.info(
                    "%s: %s rows in %.1f s", table.name, f"{written:,}", time.perf_counter() - began
                )
                return written

            counts.users = await insert(t.users, generator.users())
            counts.cohorts = await insert(t.cohorts, generator.cohorts())
            counts.learners = await insert(t.learners, generator.learner_rows())
            began = time.perf_counter()
            generator.plan_enrollments()
            generator.simulate()
            log.info("simulated the log in %.1f s", time.perf_counter() - began)
            counts.enrollments = await insert(t.enrollments, generator.enrollment_rows())
            counts.events = await insert(t.events, generator.event_rows())
            counts.answers = await insert(t.answers, generator.answer_rows())
            counts.deliveries = await insert(t.deliveries, generator.delivery_rows())
            counts.lesson_completions = await insert(
                t.lesson_completions, generator.completion_rows()
            )
        await _analyze(engine, url)
        began = time.perf_counter()
        # What the scheduler does as the log grows, after ANALYZE as a server's would be.
        await rollups.fold(engine, utcnow(), teaching_by_course({course.id: course}))
        log.info("folded the console's rollups in %.1f s", time.perf_counter() - began)
        await _analyze(engine, url)
    finally:
        await engine.dispose()
    counts.seconds = time.perf_counter() - started
    return counts


async def _analyze(engine: Any, url: str) -> None:
    """Fresh planner statistics and, on PostgreSQL, visibility maps (so index-only scans need
    no heap), as a server's autovacuum keeps them."""
    async with engine.connect() as conn:
        if make_url(url).get_backend_name() == "sqlite":
            await conn.exec_driver_sql("ANALYZE")
            return
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM ANALYZE")


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


class _Generator:
    """Seeded rows for every table, consistent with each other."""

    def __init__(
        self, rng: random.Random, plan: list[LessonPlan], learners: int, events: int
    ) -> None:
        self.rng = rng
        self.pick = Picker(rng)
        self.plan = plan
        self.n_learners = learners
        self.n_events = events
        self.learners: list[Learner] = []
        # (enrollment id, learner index, cohort id, enrolled at, first enrollment of the learner)
        self.enrolled: list[tuple[int, int, int, datetime, bool]] = []
        self.cohort_zone: dict[int, str] = {}
        self.cohort_scheduled: dict[int, bool] = {}
        self.cohort_start: dict[int, datetime] = {}
        # Filled by simulate(): compact tuples, turned into dicts batch by batch.
        self.events: list[tuple[Any, ...]] = []
        self.answers: list[tuple[Any, ...]] = []
        self.deliveries: list[tuple[Any, ...]] = []
        self.completions: list[tuple[int, str, datetime]] = []
        self.enrollment_state: dict[int, dict[str, Any]] = {}
        self._details: dict[tuple[str, str | None], dict[str, str]] = {}
        self._payloads: dict[tuple[str, str | None], list[dict[str, Any]]] = {}

    # --- staff and cohorts ------------------------------------------------------------------

    def users(self) -> Iterator[dict[str, Any]]:
        """One admin and the trainers who own the cohorts."""
        yield {
            "name": "Training unit",
            "role": "admin",
            "email": "admin@training.example",
            "created_at": START - timedelta(days=30),
        }
        for n in range(1, TRAINERS + 1):
            yield {
                "name": f"Trainer {n}",
                "role": "trainer",
                "email": f"trainer{n}@training.example",
                "phone": f"+25470000{n:04d}",
                "telegram_chat_id": str(90_000_000 + n),
                "created_at": START - timedelta(days=20 - n),
            }

    def cohorts(self) -> Iterator[dict[str, Any]]:
        """~20 cohorts, round-robin over the trainers, some scheduled, one open to the sandbox."""
        for n in range(1, COHORTS + 1):
            country, _, zone, _ = COUNTRIES[(n - 1) % len(COUNTRIES)]
            scheduled = n % 3 == 0
            start = START + timedelta(days=(n - 1) * SPAN_DAYS // COHORTS)
            self.cohort_zone[n] = zone
            self.cohort_scheduled[n] = scheduled
            self.cohort_start[n] = start
            schedule = None
            if scheduled:
                schedule = parse_schedule(
                    {
                        "days": ["mon", "wed", "fri"],
                        "at": "09:00",
                        "quiet": {"start": "20:00", "end": "07:00"},
                        "pacing": "scheduled",
                        "reminders": {"after_hours": 24, "max": 2},
                    }
                ).to_json()
            yield {
                "name": f"{country} civil service, intake {n}",
                "join_code": f"BENCH{n:02d}",
                "course_ids": [COURSE_ID],
                "time_zone": zone,
                "start_date": start.date(),
                "pacing": "scheduled" if scheduled else "self_paced",
                "schedule": schedule,
                "owner_id": 2 + (n - 1) % TRAINERS,  # user 1 is the admin
                "status": "paused" if n == COHORTS else "active",
                "created_at": start - timedelta(days=7),
                "open_to_sandbox": n == 1,
                "names": {"fr": f"Fonction publique {country}, promotion {n}"}
                if n % 4 == 0
                else None,
            }

    # --- learners and enrollments -----------------------------------------------------------

    def learner_rows(self) -> Iterator[dict[str, Any]]:
        """Learners on every channel and locale, most with a profile."""
        pick, rng = self.pick, self.rng
        for n in range(1, self.n_learners + 1):
            channel = pick.weighted(CHANNELS)
            country, dial, zone = pick.weighted(COUNTRY_WEIGHTS)
            status = pick.weighted(STATUSES)
            deleted = status == LearnerStatus.DELETED
            if channel in (ChannelName.SMS, ChannelName.WHATSAPP):
                address: str | None = f"+{dial}7{n:08d}"
            elif channel == ChannelName.TELEGRAM:
                address = str(100_000_000 + n * 7)
            else:
                address = f"web-{rng.getrandbits(64):016x}"
            locale = None if rng.random() < 0.04 else pick.weighted(LOCALES)
            profiled = not deleted and rng.random() < 0.8
            learner = Learner(
                id=n,
                key=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                channel=channel,
                address=None if deleted else address,
                locale=None if deleted else locale,
                status=status,
                country=country if profiled and rng.random() < 0.9 else None,
            )
            self.learners.append(learner)
            created = START + timedelta(seconds=rng.randrange(SPAN_DAYS * 86_400))
            yield {
                "learner_key": learner.key,
                "channel": channel.value,
                "address": learner.address,
                "name": None if deleted or rng.random() < 0.3 else f"Learner {n}",
                "locale": learner.locale,
                "time_zone": None if deleted else zone,
                "status": status.value,
                "profile_role": pick.weighted(ROLES) if profiled and rng.random() < 0.9 else None,
                "profile_country": learner.country,
                "profile_gender": pick.weighted(GENDERS)
                if profiled and rng.random() < 0.85
                else None,
                "flag": "unreachable" if status == LearnerStatus.UNREACHABLE else None,
                "last_inbound_at": None if deleted else created + timedelta(days=3),
                "created_at": created,
                "updated_at": created + timedelta(days=3),
            }

    def plan_enrollments(self) -> None:
        """Each learner in one cohort, half of them in a second; sizes skewed, as in life."""
        rng = self.rng
        weights = [1.0 / (1 + (n % 7)) for n in range(1, COHORTS + 1)]
        cumulative = list(itertools.accumulate(weights))
        enrollment_id = 0
        for index, learner in enumerate(self.learners):
            if learner.channel == ChannelName.SANDBOX:
                chosen = [1]  # only the open cohort takes sandbox visitors
            else:
                first = min(COHORTS, bisect.bisect(cumulative, rng.random() * cumulative[-1]) + 1)
                chosen = [first]
                if rng.random() < 0.5:
                    chosen.append(1 + (first + rng.randrange(0, COHORTS - 1)) % COHORTS)
            for order, cohort_id in enumerate(chosen):
                enrollment_id += 1
                at = self.cohort_start[cohort_id] + timedelta(
                    days=order * 21 + rng.randrange(14), seconds=rng.randrange(8 * 3600, 18 * 3600)
                )
                self.enrolled.append((enrollment_id, index, cohort_id, at, order == 0))

    def enrollment_rows(self) -> Iterator[dict[str, Any]]:
        """The planned enrollments, in the state their simulated log left them."""
        for enrollment_id, index, cohort_id, at, _ in self.enrolled:
            state = self.enrollment_state.get(enrollment_id, {})
            status = state.get("status", "active")
            lesson_id = state.get("lesson_id")
            scheduled = self.cohort_scheduled[cohort_id] and status == "active"
            yield {
                "learner_id": self.learners[index].id,
                "cohort_id": cohort_id,
                "course_id": COURSE_ID,
                "lesson_id": lesson_id,
                "status": status,
                "attempt": 0,
                "reminders_sent": 2 if status == "paused" else 0,
                "next_due_at": state.get("last", at) + timedelta(days=2) if scheduled else None,
                "enrolled_at": at,
                "completed_at": state.get("completed_at"),
            }

    # --- the log ----------------------------------------------------------------------------

    def simulate(self) -> None:
        """Walk every enrollment through the course until exactly the event budget is spent."""
        seeded = self.rng.getstate()
        scale = 1.05
        # Deepen every walk a little and start again (same seed) until the log fills the budget.
        while not self._walk_all(scale) and scale < 100:
            self.rng.setstate(seeded)
            scale *= 1.08
        self.events.sort(key=lambda row: row[0])

    def _walk_all(self, scale: float) -> bool:
        for log in (self.events, self.answers, self.deliveries, self.completions):
            log.clear()
        self.enrollment_state.clear()
        rng = self.rng
        per_enrollment = self.n_events / max(1, len(self.enrolled))
        # ~5.9 events per lesson reached, ~1.5 around joining: the mean depth for the budget
        # (a walk takes int(depth) lessons, hence the half).
        depth = scale * (max(0.1, (per_enrollment - 1.5) / 5.9) + 0.5)
        walkers = [self._walk(entry, rng.expovariate(1 / depth)) for entry in self.enrolled]
        budget = self.n_events
        emitted = 0
        # Round robin, one step (a lesson) per walker: if the budget runs out first, it cuts
        # the deepest walks, as the log of a course still running would.
        while walkers and emitted < budget:
            going = []
            for walker in walkers:
                batch = next(walker, None)
                if batch is None:
                    continue
                going.append(walker)
                room = budget - emitted
                self.events.extend(batch[:room])
                emitted += min(room, len(batch))
                if emitted >= budget:
                    return True
            walkers = going
        return emitted >= budget

    def _walk(
        self, entry: tuple[int, int, int, datetime, bool], depth: float
    ) -> Iterator[list[tuple[Any, ...]]]:
        """One enrollment's events, a step at a time; answers and deliveries on the side."""
        rng = self.rng
        enrollment_id, index, cohort_id, at, first = entry
        learner = self.learners[index]
        channel = learner.channel.value
        locale = learner.locale or "en"
        key = learner.key

        def event(when: datetime, kind: EventType, **values: Any) -> tuple[Any, ...]:
            return (
                when,
                kind.value,
                key,
                cohort_id,
                COURSE_ID,
                values.get("lesson_id"),
                values.get("question_id"),
                values.get("locale"),
                channel,
                values.get("correct"),
                values.get("attempt"),
                values.get("detail"),
            )

        state: dict[str, Any] = {"status": "active", "lesson_id": None, "completed_at": None}
        self.enrollment_state[enrollment_id] = state
        step = [event(at, EventType.ENROLLED)]
        if first and learner.locale is not None and rng.random() < 0.5:
            step.append(
                event(at + timedelta(seconds=40), EventType.LANGUAGE_CHANGED, locale=learner.locale)
            )
        if first and learner.country is not None and rng.random() < 0.5:
            step.append(
                event(
                    at + timedelta(seconds=70),
                    EventType.PROFILE_UPDATED,
                    detail=self._detail("field", "country"),
                )
            )
        yield step
        now = at + timedelta(minutes=2)
        teaching_done = 0
        teaching_total = sum(1 for lesson in self.plan if lesson.teaching)
        for lesson in self.plan[: int(depth)]:
            step = []
            now += timedelta(
                days=2 if self.cohort_scheduled[cohort_id] else 1,
                seconds=rng.randrange(-3600, 3600),
            )
            state["lesson_id"] = lesson.id
            state["last"] = now
            step.append(event(now, EventType.LESSON_DELIVERED, lesson_id=lesson.id, locale=locale))
            self._delivery(learner, enrollment_id, lesson.id, DeliveryKind.LESSON, now)
            if rng.random() < 0.12:
                self._delivery(
                    learner,
                    enrollment_id,
                    lesson.id,
                    DeliveryKind.REMINDER,
                    now + timedelta(hours=24),
                )
                now += timedelta(hours=25)
            answer_at = now + timedelta(minutes=rng.randrange(1, 120))
            quit_mid_lesson = rng.random() < 0.06
            for q_index, question in enumerate(lesson.questions):
                if quit_mid_lesson and q_index > 0:
                    break
                attempt = 1
                while True:
                    answer_at += timedelta(seconds=rng.randrange(15, 180))
                    response, correct = self._response(question)
                    detail = self._detail("kind", question.kind, response)
                    step.append(
                        event(
                            answer_at,
                            EventType.ANSWERED,
                            lesson_id=lesson.id,
                            question_id=question.id,
                            locale=locale,
                            correct=correct,
                            attempt=attempt,
                            detail=detail,
                        )
                    )
                    text = response if response is not None else rng.choice(REFLECTIONS)
                    self.answers.append(
                        (enrollment_id, lesson.id, question.id, attempt, text, correct, answer_at)
                    )
                    if rng.random() < 0.55:
                        self._delivery(
                            learner,
                            None,
                            "reply",
                            DeliveryKind.REPLY,
                            answer_at + timedelta(seconds=1),
                        )
                    if correct is not False or attempt >= 3:
                        break
                    attempt += 1
            if quit_mid_lesson:
                yield step
                return
            done_at = answer_at + timedelta(seconds=5)
            step.append(event(done_at, EventType.LESSON_COMPLETED, lesson_id=lesson.id))
            self.completions.append((enrollment_id, lesson.id, done_at))
            if lesson.teaching:
                teaching_done += 1
                if teaching_done == teaching_total:
                    step.append(event(done_at, EventType.COURSE_COMPLETED))
                    state["completed_at"] = done_at
            if lesson is self.plan[-1]:
                state["status"] = "completed"
            now = done_at
            yield step
        if state["status"] == "completed":
            return
        # Where the walk ends, the learner leaves: says STOP, stops answering, or is deleted.
        if learner.status == LearnerStatus.STOPPED or rng.random() < 0.08:
            yield [event(now + timedelta(days=2), EventType.STOPPED)]
        elif learner.status == LearnerStatus.PAUSED or rng.random() < 0.15:
            state["status"] = "paused"
            yield [
                event(
                    now + timedelta(days=3),
                    EventType.PAUSED,
                    lesson_id=state["lesson_id"],
                    detail=self._detail("reason", "reminders"),
                )
            ]
        elif learner.status == LearnerStatus.DELETED and first:
            yield [
                event(now + timedelta(days=5), EventType.DATA_DELETED, detail={"tombstone": key})
            ]

    def _response(self, question: QuestionPlan) -> tuple[str | None, bool | None]:
        rng = self.rng
        if question.right is None:
            if question.kind == QuestionKind.RATING:
                return str(min(5, 1 + int(rng.triangular(0, 5, 3.8)))), None
            return None, None  # free text: the value stays in the answers table
        if rng.random() < 0.7:
            return question.right, True
        wrong = [str(n) for n in range(1, question.options + 1) if str(n) != question.right]
        return (rng.choice(wrong) if wrong else "1"), False

    def _detail(self, name: str, first: str, value: str | None = None) -> dict[str, str]:
        # Shared dicts: a million events need only a few hundred distinct details.
        cache_key = (f"{name}={first}", value)
        found = self._details.get(cache_key)
        if found is None:
            found = {name: first} if value is None else {name: first, "value": value}
            self._details[cache_key] = found
        return found

    def _delivery(
        self,
        learner: Learner,
        enrollment_id: int | None,
        lesson_id: str,
        kind: DeliveryKind,
        due: datetime,
    ) -> None:
        rng = self.rng
        draw = rng.random()
        if (learner.status == LearnerStatus.UNREACHABLE and draw < 0.5) or draw < 0.04:
            status = DeliveryStatus.FAILED
        elif draw < 0.30:
            status = DeliveryStatus.SENT
        elif draw < 0.75:
            status = DeliveryStatus.DELIVERED
        else:
            status = DeliveryStatus.READ
        if kind == DeliveryKind.REPLY:
            lesson_id = f"reply:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        self.deliveries.append(
            (
                learner.id,
                enrollment_id,
                lesson_id,
                kind.value,
                learner.channel,
                status.value,
                learner.locale or "en",
                learner.address,
                due,
            )
        )

    # --- rows for the tables, batch by batch --------------------------------------------

    def event_rows(self) -> Iterator[dict[str, Any]]:
        """The simulated log as events rows, oldest first (ids follow time, as in life)."""
        names = (
            "occurred_at",
            "type",
            "learner_key",
            "cohort_id",
            "course_id",
            "lesson_id",
            "question_id",
            "locale",
            "channel",
            "correct",
            "attempt",
            "detail",
        )
        for row in self.events:
            yield dict(zip(names, row, strict=True))
        self.events = []

    def answer_rows(self) -> Iterator[dict[str, Any]]:
        """The answers behind the `answered` events (free text included)."""
        self.answers.sort(key=lambda row: row[6])
        for enrollment_id, lesson_id, question_id, attempt, text, correct, at in self.answers:
            yield {
                "enrollment_id": enrollment_id,
                "course_id": COURSE_ID,
                "lesson_id": lesson_id,
                "question_id": question_id,
                "attempt": attempt,
                "response": text,
                "correct": correct,
                "answered_at": at,
            }
        self.answers = []

    def delivery_rows(self) -> Iterator[dict[str, Any]]:
        """The outbox: lessons, reminders and replies, mostly settled."""
        self.deliveries.sort(key=lambda row: row[8])
        counter = itertools.count(1)
        for (
            learner_id,
            enrollment_id,
            lesson_id,
            kind,
            channel,
            status,
            locale,
            address,
            due,
        ) in self.deliveries:
            sent = status != DeliveryStatus.FAILED.value
            reply = kind == DeliveryKind.REPLY.value
            yield {
                "learner_id": learner_id,
                "enrollment_id": enrollment_id,
                "lesson_id": lesson_id,
                "kind": kind,
                "channel": channel.value,
                "status": status,
                "priority": 0 if reply else 1,
                "locale": locale,
                "payload": self._payload(channel, locale, address) if reply else None,
                "due_at": due,
                "attempts": 1 if sent else 3,
                "provider_message_id": f"SM{next(counter):032x}" if sent else None,
                "error_code": None if sent else self.rng.choice(FAILURES[channel]),
                "segments": (2 if locale in ("ar", "sw") else 1)
                if channel == ChannelName.SMS
                else None,
                "parts_sent": 1 if sent else 0,
                "created_at": due,
                "sent_at": due + timedelta(seconds=2) if sent else None,
                "updated_at": due + timedelta(seconds=30),
            }
        self.deliveries = []

    def _payload(self, channel: ChannelName, locale: str, address: str | None) -> Any:
        return [
            {
                "channel": channel.value,
                "address": address or "",
                "text": "Correct! / Sawa kabisa!",
                "locale": locale,
                "buttons": [],
                "image": None,
                "numbered": True,
                "is_reply": True,
                "meta": {},
            }
        ]

    def completion_rows(self) -> Iterator[dict[str, Any]]:
        """The lessons each enrollment has completed, at their first completion."""
        seen: set[tuple[int, str]] = set()
        for enrollment_id, lesson_id, at in self.completions:
            if (enrollment_id, lesson_id) in seen:
                continue
            seen.add((enrollment_id, lesson_id))
            yield {
                "enrollment_id": enrollment_id,
                "course_id": COURSE_ID,
                "lesson_id": lesson_id,
                "completed_at": at,
            }
        self.completions = []


async def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist (SQLite: nothing)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    import asyncpg  # type: ignore[import-untyped]

    admin = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database="postgres",
    )
    try:
        exists = await admin.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", parsed.database
        )
        if not exists:
            await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


def _url(target: str) -> str:
    return target if "://" in target else f"sqlite+aiosqlite:///{Path(target).resolve()}"


def main(argv: Sequence[str] | None = None) -> None:
    """Build a benchmark database at a path (SQLite) or URL and print the row counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "target",
        nargs="?",
        default=str(DEFAULT_PATH),
        help=f"SQLite file or database URL [default: {DEFAULT_PATH}]",
    )
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="replace an existing SQLite file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    url = _url(args.target)
    path = make_url(url).database
    if make_url(url).get_backend_name() == "sqlite" and path and Path(path).exists():
        if not args.force:
            parser.error(f"{path} exists: pass --force to replace it")
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
    counts = asyncio.run(build(url, learners=args.learners, events=args.events, seed=args.seed))
    print(counts)


if __name__ == "__main__":
    main()
