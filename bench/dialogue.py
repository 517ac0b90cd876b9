"""Answers per second through `Dialogue.handle` on SQLite, against bare single-row inserts.

    .venv/bin/python bench/dialogue.py [--learners 1000] [--answers 2000] [--runs 5]
                                       [--fold-every SECONDS]

Each run: a fresh migrated SQLite file store; `--learners` learners join a self-paced
cohort (language, profile skipped) and sit on the first quiz question; then `--answers`
replies ("1" or "2", seeded, so a mix of right and wrong) go through `Dialogue.handle`,
timed; then, on the same engine, the same number of single-row inserts, each in its own
transaction, timed as the baseline. Prints each run and the medians. `--fold-every`: while
the answers are timed, a task on the same loop folds the console's rollups at that interval,
as `serve`'s scheduler does every 15 s (a shorter interval folds the same events in more,
smaller chunks). Without it, the run then times one fold of what the answers logged, as the
scheduler's next fold would take it, and prints its share of the answers' time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine as create_sync_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.dialogue import Dialogue  # noqa: E402
from bot.domain import ChannelName, EventType, InboundMessage  # noqa: E402
from bot.i18n import UiCatalogs  # noqa: E402
from bot.lessons.catalogs import CourseTranslations, load_translations  # noqa: E402
from bot.lessons.loader import LoadedCourse, load_courses, teaching_by_course  # noqa: E402
from bot.store import migrate, rollups  # noqa: E402
from bot.store.db import create_engine, utcnow  # noqa: E402
from bot.store.tables import events  # noqa: E402

SHIPPED_COURSE = "digital-skills"


@dataclass(frozen=True)
class RunResult:
    """One run's figures."""

    answers_per_s: float
    inserts_per_s: float
    sync_inserts_per_s: float

    @property
    def ratio(self) -> float:
        """Answers per second as a share of bare inserts per second."""
        return self.answers_per_s / self.inserts_per_s


def generated_course(directory: Path) -> Path:
    """A small course (3 lessons of 3 questions) for when the shipped one is missing."""
    course = directory / "bench-course"
    course.mkdir(parents=True)
    lesson_ids = [f"lesson-{n}" for n in range(1, 4)]
    (course / "course.yaml").write_text(
        yaml.safe_dump(
            {"id": "bench-course", "title": "Bench", "locales": ["en"], "lessons": lesson_ids}
        )
    )
    for lesson_id in lesson_ids:
        questions = [
            {
                "id": f"q{q}",
                "kind": "single_choice",
                "prompt": f"Question {q}?",
                "options": [{"text": "Right", "feedback": "Yes."}, {"text": "Wrong"}],
                "answer": 1,
            }
            for q in range(1, 4)
        ]
        (course / f"{lesson_id}.yaml").write_text(
            yaml.safe_dump(
                {"id": lesson_id, "title": lesson_id, "body": "Body.", "questions": questions}
            )
        )
    return directory


def load_content() -> tuple[Mapping[str, LoadedCourse], Mapping[str, CourseTranslations], str]:
    """The shipped course with its translations, or a generated one."""
    lessons_dir = ROOT / "lessons"
    if (lessons_dir / SHIPPED_COURSE / "course.yaml").is_file():
        courses = load_courses(lessons_dir)
        return courses, load_translations(courses.values(), ROOT / "locales"), SHIPPED_COURSE
    print("shipped course missing: using a generated course", file=sys.stderr)
    courses = load_courses(generated_course(Path(tempfile.mkdtemp())))
    return courses, load_translations(courses.values(), ROOT / "locales"), "bench-course"


async def one_run(
    run: int,
    courses: Mapping[str, LoadedCourse],
    content: Mapping[str, CourseTranslations],
    course_id: str,
    learners: int,
    answers: int,
    fold_every: float | None = None,
) -> RunResult:
    """Set up a store with learners on a question, then time answers and bare inserts."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        engine = create_engine(url)
        try:
            dialogue = Dialogue(engine, courses, content, UiCatalogs(ROOT / "locales"))
            await dialogue.create_cohort(name="Bench", join_code="BENCH", course_ids=[course_id])
            counter = iter(range(10**9))

            def inbound(address: str, text: str) -> InboundMessage:
                return InboundMessage(
                    ChannelName.SMS, address, text, provider_id=f"r{run}-{next(counter)}"
                )

            addresses = [f"+1555{run:02d}{n:06d}" for n in range(learners)]
            for address in addresses:
                for text in ("JOIN BENCH", "2", "SKIP", "SKIP", "SKIP"):
                    await dialogue.handle(inbound(address, text))
            # Seeded "1"/"2": right or wrong depending on the question, always understood.
            rng = random.Random(run)
            messages = [inbound(addresses[n % learners], rng.choice("12")) for n in range(answers)]
            await rollups.fold(engine, utcnow(), teaching_by_course(courses))
            folding = None
            folded: list[int] = []
            if fold_every is not None:
                folding = asyncio.create_task(_fold_forever(engine, courses, fold_every, folded))
            start = time.perf_counter()
            for message in messages:
                replies = await dialogue.handle(message)
                if not replies:
                    raise RuntimeError(f"no reply to {message}")
                if folding is not None:
                    # A turn on SQLite never waits on the loop; a server's loop runs other
                    # tasks between requests, and so does this one.
                    await asyncio.sleep(0)
            answers_per_s = answers / (time.perf_counter() - start)
            if folding is not None:
                folding.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await folding
                print(f"  {len(folded)} folds of {sum(folded)} event ids while timed", flush=True)
            else:
                # What the scheduler's next fold costs for these answers, on the same core:
                # measured in this run, so its share of the answers' time is not noise.
                answering = answers / answers_per_s
                start = time.perf_counter()
                ids = await rollups.fold(engine, utcnow(), teaching_by_course(courses))
                folding_s = time.perf_counter() - start
                print(
                    f"  folding their {ids} event ids afterwards: {folding_s * 1000:.0f} ms, "
                    f"{folding_s / answering:.1%} of the answers' {answering * 1000:.0f} ms",
                    flush=True,
                )

            now = utcnow()
            start = time.perf_counter()
            for n in range(answers):
                async with engine.begin() as conn:
                    await conn.execute(
                        events.insert().values(
                            occurred_at=now, type=EventType.ANSWERED.value, learner_key=f"k{n}"
                        )
                    )
            inserts_per_s = answers / (time.perf_counter() - start)

            # The floor under the dialogue's own SQLite path: the same inserts on a plain
            # (sync) sqlite3 connection, each in its own transaction.
            sync_engine = create_sync_engine(url.replace("+aiosqlite", ""))
            try:
                with sync_engine.connect() as sync_conn:
                    sync_conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                    sync_conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                    sync_conn.commit()
                    start = time.perf_counter()
                    for n in range(answers):
                        with sync_conn.begin():
                            sync_conn.execute(
                                events.insert().values(
                                    occurred_at=now,
                                    type=EventType.ANSWERED.value,
                                    learner_key=f"s{n}",
                                )
                            )
                    sync_inserts_per_s = answers / (time.perf_counter() - start)
            finally:
                sync_engine.dispose()
        finally:
            await engine.dispose()
    return RunResult(answers_per_s, inserts_per_s, sync_inserts_per_s)


async def _fold_forever(
    engine: Any, courses: Mapping[str, LoadedCourse], every: float, folded: list[int]
) -> None:
    teaching = teaching_by_course(courses)
    while True:
        await asyncio.sleep(every)
        folded.append(await rollups.fold(engine, utcnow(), teaching))


async def main() -> None:
    """Parse arguments, run, print each run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--answers", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fold-every", type=float, default=None, help="seconds between folds")
    args = parser.parse_args()
    # More answers than 3 per learner would run past the first lesson's quiz.
    if not 1 <= args.answers <= 3 * args.learners:
        parser.error("--answers must be between 1 and 3 x --learners")
    courses, content, course_id = load_content()
    print(
        f"course {course_id}, {args.learners} learners, {args.answers} answers per run, "
        f"SQLite file store, Python {sys.version.split()[0]}"
    )
    results = []
    for run in range(1, args.runs + 1):
        result = await one_run(
            run, courses, content, course_id, args.learners, args.answers, args.fold_every
        )
        results.append(result)
        print(
            f"run {run}: {result.answers_per_s:8.0f} answers/s   "
            f"{result.inserts_per_s:8.0f} inserts/s   ratio {result.ratio:.2f}   "
            f"sync {result.sync_inserts_per_s:8.0f} inserts/s   "
            f"ratio {result.answers_per_s / result.sync_inserts_per_s:.2f}"
        )
    print(
        f"median: {statistics.median(r.answers_per_s for r in results):8.0f} answers/s   "
        f"{statistics.median(r.inserts_per_s for r in results):8.0f} inserts/s   "
        f"ratio {statistics.median(r.ratio for r in results):.2f}   "
        f"sync {statistics.median(r.sync_inserts_per_s for r in results):8.0f} inserts/s   "
        f"ratio {statistics.median(r.answers_per_s / r.sync_inserts_per_s for r in results):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
