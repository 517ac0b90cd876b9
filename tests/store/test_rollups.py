"""The console's rollups: folded from the log, in any chunks, by racing folders, exactly once."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.analytics.console.questions import discrimination, discrimination_in_range
from bot.analytics.figures import Filters, Scope
from bot.domain import ChannelName, EventType
from bot.store import rollups
from bot.store.events import EventRow, append_events
from bot.store.tables import (
    enrollment_progress,
    learner_scores,
    learners,
    lesson_completions,
    lesson_days,
    question_days,
    question_sums,
)
from tests.store.rows import insert_cohort, insert_enrollment, insert_learner

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ITEMS = [
    ("digital-skills", "l1", "q1"),
    ("digital-skills", "l1", "q2"),
    ("digital-skills", "l2", "q1"),
]
ADMIN = Scope(cohort_ids=None, is_admin=True)
TEACHING = {"digital-skills": frozenset({"l1", "l2"})}


def answered(
    key: str,
    cohort: int | None,
    item: tuple[str, str, str],
    right: bool,
    at: datetime,
    *,
    attempt: int = 1,
    channel: str = "sms",
    value: str = "2",
) -> EventRow:
    course, lesson, question = item
    return EventRow(
        type=EventType.ANSWERED,
        learner_key=key,
        cohort_id=cohort,
        course_id=course,
        lesson_id=lesson,
        question_id=question,
        channel=channel,
        correct=right,
        attempt=attempt,
        detail={"kind": "single_choice", "value": value},
        occurred_at=at,
    )


async def a_log(engine: AsyncEngine, seed: int = 7) -> tuple[list[str], list[int]]:
    """Eight learners in two cohorts answering three items over days, in several commits."""
    rng = random.Random(seed)
    async with engine.begin() as conn:
        cohorts = [await insert_cohort(conn), await insert_cohort(conn)]
        keys = [
            (await insert_learner(conn, profile_gender=rng.choice(["woman", "man"])))["learner_key"]
            for _ in range(8)
        ]
        sandbox = await insert_learner(conn, channel=ChannelName.SANDBOX.value)
    for day in range(3):
        async with engine.begin() as conn:
            batch = []
            for n, key in enumerate(keys):
                item = ITEMS[day]
                right = rng.random() < 0.6
                at = START + timedelta(days=day, minutes=n)
                batch.append(
                    answered(key, cohorts[n % 2], item, right, at, value="2" if right else "3")
                )
                batch.append(answered(key, cohorts[n % 2], item, True, at, attempt=2))  # not first
            batch.append(
                answered(sandbox["learner_key"], None, ITEMS[day], True, START, channel="sandbox")
            )
            await append_events(conn, batch)
    return keys, cohorts


async def rollup_rows(engine: AsyncEngine) -> tuple[list[tuple[object, ...]], ...]:
    async with engine.connect() as conn:
        found = []
        for table, order in (
            (question_days, ("course_id", "lesson_id", "question_id", "cohort_id", "day")),
            (question_sums, ("course_id", "lesson_id", "question_id", "cohort_id")),
            (learner_scores, ("learner_key", "cohort_id", "course_id")),
        ):
            columns = [c for c in table.c if c.name != "id"]
            query = select(*columns).order_by(*(table.c[name] for name in order))
            found.append([tuple(row) for row in await conn.execute(query)])
    return tuple(found)


async def test_a_fold_in_small_chunks_equals_one_fold_and_the_log(engine: AsyncEngine) -> None:
    await a_log(engine)
    assert await rollups.fold(engine, START, TEACHING, chunk=5) > 0
    chunked = await rollup_rows(engine)
    async with engine.begin() as conn:
        for table in (question_days, question_sums, learner_scores):
            await conn.execute(table.delete())
        await conn.execute(update(rollups.rollup_cursor).values(last_event_id=0))
    await rollups.fold(engine, START, TEACHING)
    assert await rollup_rows(engine) == chunked
    days, _, scores = chunked
    assert sum(row[5] for row in days) == 24  # eight learners, three items: first attempts only
    assert all(row[3] is not None for row in days), "the sandbox's answers are left out"
    assert len(scores) == 8
    async with engine.connect() as conn:
        rolled = await discrimination(conn, Filters(), ADMIN)
        logged = await discrimination_in_range(
            conn, Filters(since=date(2026, 1, 1), until=date(2027, 1, 1)), ADMIN
        )
    assert rolled.keys() == logged.keys() == set(ITEMS)
    for item in ITEMS:
        assert rolled[item] == pytest.approx(logged[item]), item


async def test_folding_again_covers_nothing_and_new_events_are_added(
    engine: AsyncEngine,
) -> None:
    keys, cohorts = await a_log(engine)
    await rollups.fold(engine, START, TEACHING)
    assert await rollups.fold(engine, START, TEACHING) == 0
    async with engine.begin() as conn:
        await append_events(
            conn, [answered(keys[0], cohorts[0], ITEMS[0], True, START + timedelta(days=9))]
        )
    assert await rollups.fold(engine, START, TEACHING) == 1
    async with engine.connect() as conn:
        total = await conn.scalar(select(func.sum(question_days.c.answered)))
    assert total == 25


async def test_racing_folders_fold_each_event_once(engine: AsyncEngine) -> None:
    await a_log(engine)
    await asyncio.gather(*(rollups.fold(engine, START, TEACHING, chunk=4) for _ in range(3)))
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.sum(question_days.c.answered))) == 24
        assert await conn.scalar(select(func.sum(learner_scores.c.answered))) == 24
        assert await conn.scalar(select(func.sum(question_sums.c.n))) == 24


async def test_a_learners_new_profile_reaches_their_scores_with_the_event_that_logs_it(
    engine: AsyncEngine,
) -> None:
    keys, _ = await a_log(engine)
    await rollups.fold(engine, START, TEACHING)
    async with engine.begin() as conn:
        await conn.execute(
            update(learners).where(learners.c.learner_key == keys[0]).values(profile_gender="x")
        )
        await append_events(
            conn,
            [EventRow(type=EventType.PROFILE_UPDATED, learner_key=keys[0], channel="sms")],
        )
    await rollups.fold(engine, START, TEACHING)
    async with engine.connect() as conn:
        genders = set(
            await conn.scalars(
                select(learner_scores.c.profile_gender).where(
                    learner_scores.c.learner_key == keys[0]
                )
            )
        )
    assert genders == {"x"}


async def test_an_id_committed_after_a_higher_one_is_not_skipped(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: its ids commit in order")
    keys, cohorts = await a_log(engine)
    await rollups.fold(engine, START, TEACHING)
    late = await engine.connect()
    transaction = await late.begin()
    await append_events(late, [answered(keys[0], cohorts[0], ITEMS[1], True, START)])  # lower id
    async with engine.begin() as conn:
        await append_events(conn, [answered(keys[1], cohorts[1], ITEMS[2], True, START)])
    folding = asyncio.create_task(rollups.fold(engine, START, TEACHING))
    await asyncio.sleep(0.3)
    assert not folding.done(), "the fold waits for the open insert"
    await transaction.commit()
    await late.close()
    await folding
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.sum(question_days.c.answered))) == 26


async def test_enrollments_are_counted_again_when_the_teaching_lessons_change(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        cohort = await insert_cohort(conn)
        learner = await insert_learner(conn)
        enrollment = await insert_enrollment(conn, learner["id"], cohort)
        for lesson in ("l1", "l2"):
            await conn.execute(
                lesson_completions.insert().values(
                    enrollment_id=enrollment,
                    course_id="digital-skills",
                    lesson_id=lesson,
                    completed_at=START,
                )
            )
        await append_events(
            conn, [EventRow(type=EventType.ENROLLED, learner_key=learner["learner_key"])]
        )

    async def done() -> int | None:
        async with engine.connect() as conn:
            return await conn.scalar(select(enrollment_progress.c.lessons_done))

    await rollups.fold(engine, START, TEACHING)
    assert await done() == 2
    await rollups.fold(engine, START, {"digital-skills": frozenset({"l2", "l3"})})
    assert await done() == 1


async def test_each_chosen_option_is_counted_on_its_utc_day(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        cohort = await insert_cohort(conn)
        keys = [(await insert_learner(conn))["learner_key"] for _ in range(5)]
        late = datetime(2026, 11, 2, 23, 59, tzinfo=UTC)
        values = ["1,3", "true", "false", "2", "3, 5"]
        await append_events(
            conn,
            [
                answered(key, cohort, ITEMS[0], n == 0, late + timedelta(minutes=n), value=value)
                for n, (key, value) in enumerate(zip(keys, values, strict=True))
            ],
        )
    folder = engine
    if engine.dialect.name == "postgresql":  # a session far from UTC must not move the day
        far = {"server_settings": {"TimeZone": "Pacific/Auckland"}}
        folder = create_async_engine(engine.url, connect_args=far)
    try:
        await rollups.fold(folder, START, TEACHING)
    finally:
        if folder is not engine:
            await folder.dispose()
    async with engine.connect() as conn:
        rows = (await conn.execute(select(question_days).order_by(question_days.c.day))).all()
    counted = [
        (row.day, row.answered, row.right_first, *(row[f"option_{n}"] for n in range(1, 6)))
        for row in (r._mapping for r in rows)
    ]
    assert counted == [
        (date(2026, 11, 2), 1, 1, 1, 0, 1, 0, 0),
        (date(2026, 11, 3), 4, 0, 1, 2, 1, 0, 1),
    ]


async def test_lessons_delivered_are_counted_per_lesson_cohort_and_day_once(
    engine: AsyncEngine,
) -> None:
    def sent(
        key: str, cohort: int | None, lesson: str, at: datetime, channel: str = "sms"
    ) -> EventRow:
        return EventRow(
            type=EventType.LESSON_DELIVERED,
            learner_key=key,
            cohort_id=cohort,
            course_id="digital-skills",
            lesson_id=lesson,
            channel=channel,
            occurred_at=at,
        )

    async with engine.begin() as conn:
        cohort = await insert_cohort(conn)
        await append_events(
            conn,
            [
                sent("a", cohort, "l1", START),
                sent("b", cohort, "l1", START + timedelta(minutes=5)),
                sent("a", cohort, "l2", START + timedelta(days=1)),
                sent("c", None, "l1", START),
                sent("s", None, "l1", START, channel=ChannelName.SANDBOX.value),
            ],
        )
    await rollups.fold(engine, START, TEACHING, chunk=2)
    async with engine.begin() as conn:
        await append_events(conn, [sent("c", cohort, "l2", START + timedelta(days=1))])
    await rollups.fold(engine, START, TEACHING, chunk=2)
    await rollups.fold(engine, START, TEACHING)  # nothing left: counts nothing twice
    d = lesson_days.c
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(d.lesson_id, d.cohort_id, d.day, d.delivered).order_by(
                d.lesson_id, d.cohort_id, d.day
            )
        )
        counted = [tuple(row) for row in rows]
    day = START.date()
    assert sorted(counted, key=str) == sorted(
        [
            ("l1", cohort, day, 2),
            ("l1", None, day, 1),  # no sandbox visitor
            ("l2", cohort, day + timedelta(days=1), 2),
        ],
        key=str,
    )
