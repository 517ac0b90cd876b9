"""Alembic owns the schema: upgrade creates exactly bot.store.tables, and can be repeated."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, func, inspect, select, text
from sqlalchemy.engine import Connection

from bot.domain import EventType
from bot.store import migrate
from bot.store.db import create_engine
from bot.store.events import EventRow, append_events
from bot.store.tables import events, lesson_days, metadata


async def schema_differences(database_url: str, target: MetaData = metadata) -> list[Any]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:

            def compare(sync_conn: Connection) -> list[Any]:
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return list(compare_metadata(context, target))

            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def table_names(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_creates_exactly_the_schema_of_tables(database_url: str) -> None:
    assert await asyncio.to_thread(migrate.current, database_url) is None

    await asyncio.to_thread(migrate.upgrade, database_url)

    assert await schema_differences(database_url) == []
    assert await table_names(database_url) == {*metadata.tables, "alembic_version"}
    assert await asyncio.to_thread(migrate.current, database_url) == migrate.head()


async def test_comparison_would_notice_a_table_missing_from_the_migrations(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url)
    extended = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(extended)
    extended.tables["events"].append_column(Column("extra", Integer, nullable=True))

    differences = await schema_differences(database_url, extended)

    assert [diff[0] for diff in differences] == ["add_column"]


async def test_upgrade_twice_changes_nothing(database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url)
    await asyncio.to_thread(migrate.upgrade, database_url)

    assert await schema_differences(database_url) == []
    assert await asyncio.to_thread(migrate.current, database_url) == migrate.head()


async def test_downgrade_to_base_removes_every_table(database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url)

    await asyncio.to_thread(migrate.downgrade, database_url, "base")

    assert await table_names(database_url) == {"alembic_version"}
    assert await asyncio.to_thread(migrate.current, database_url) is None


async def test_upgrade_may_be_called_directly_from_async_code(database_url: str) -> None:
    migrate.upgrade(database_url)

    assert migrate.current(database_url) == migrate.head()


async def test_upgrades_from_several_threads_are_serialised(database_url: str) -> None:
    await asyncio.gather(*(asyncio.to_thread(migrate.upgrade, database_url) for _ in range(3)))

    assert await schema_differences(database_url) == []


# SQLite is migrated by one process; the lock between processes is PostgreSQL's.
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_upgrades_from_several_processes_at_once_all_succeed(database_url: str) -> None:
    # Several bot processes starting `serve` against one PostgreSQL database.
    script = "import sys; from bot.store import migrate; migrate.upgrade(sys.argv[1])"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, database_url, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]

    results = await asyncio.gather(*(process.communicate() for process in processes))

    assert [
        (process.returncode, err) for process, (_, err) in zip(processes, results, strict=True)
    ] == [(0, b"")] * 3
    assert await schema_differences(database_url) == []


async def test_0005_gives_existing_deliveries_no_parts_sent_and_reverts(database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url, "0004")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            learner_id = (
                await conn.execute(
                    text(
                        "INSERT INTO learners (learner_key, channel, address, status, created_at,"
                        " updated_at) VALUES ('k', 'sms', '+1555', 'active', :now, :now)"
                        " RETURNING id"
                    ).bindparams(now=datetime.now(UTC))
                )
            ).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO deliveries (learner_id, lesson_id, kind, channel, status,"
                    " priority, due_at, attempts, created_at, updated_at) VALUES (:learner,"
                    " 'users', 'lesson', 'sms', 'pending', 1, :now, 1, :now, :now)"
                ).bindparams(learner=learner_id, now=datetime.now(UTC))
            )
        await asyncio.to_thread(migrate.upgrade, database_url)
        async with engine.connect() as conn:
            parts = (await conn.execute(text("SELECT parts_sent FROM deliveries"))).scalar_one()
        assert parts == 0

        await asyncio.to_thread(migrate.downgrade, database_url, "0004")

        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("deliveries")}
            )
            kept = (await conn.execute(text("SELECT count(*) FROM deliveries"))).scalar_one()
        assert "parts_sent" not in columns and kept == 1
    finally:
        await engine.dispose()


async def test_0006_opens_only_the_demo_cohort_to_the_sandbox_and_reverts(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url, "0005")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for code in ("DEMO", "NBO234"):
                await conn.execute(
                    text(
                        "INSERT INTO cohorts (name, join_code, course_ids, time_zone, pacing,"
                        " status, created_at) VALUES (:code, :code, '[]', 'UTC', 'self_paced',"
                        " 'active', :now)"
                    ).bindparams(code=code, now=datetime.now(UTC))
                )
        await asyncio.to_thread(migrate.upgrade, database_url)
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT join_code, open_to_sandbox FROM cohorts ORDER BY join_code")
            )
            opened = {code: bool(flag) for code, flag in rows}
        assert opened == {"DEMO": True, "NBO234": False}

        await asyncio.to_thread(migrate.downgrade, database_url, "0005")

        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("cohorts")}
            )
            kept = (await conn.execute(text("SELECT count(*) FROM cohorts"))).scalar_one()
        assert "open_to_sandbox" not in columns and kept == 2
    finally:
        await engine.dispose()


async def test_0008_adds_cohort_names_and_reverts(database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url, "0007")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO cohorts (name, join_code, course_ids, time_zone, pacing,"
                    " status, created_at) VALUES ('Demo cohort', 'DEMO', '[]', 'UTC',"
                    " 'self_paced', 'active', :now)"
                ).bindparams(now=datetime.now(UTC))
            )
        await asyncio.to_thread(migrate.upgrade, database_url, "0008")
        async with engine.connect() as conn:
            names = (await conn.execute(text("SELECT names FROM cohorts"))).scalar_one()
        assert names is None  # every learner reads `name` until names are given

        await asyncio.to_thread(migrate.downgrade, database_url, "0007")

        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("cohorts")}
            )
            kept = (await conn.execute(text("SELECT count(*) FROM cohorts"))).scalar_one()
        assert "names" not in columns and kept == 1
    finally:
        await engine.dispose()


async def test_0009_carries_completed_lessons_over_from_the_event_log_and_reverts(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url, "0008")
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            cohort = (
                await conn.execute(
                    text(
                        "INSERT INTO cohorts (name, join_code, course_ids, time_zone, pacing,"
                        " status, created_at) VALUES ('C', 'C1', '[\"ds\"]', 'UTC', 'self_paced',"
                        " 'active', :now) RETURNING id"
                    ).bindparams(now=now)
                )
            ).scalar_one()
            enrollment_ids = []
            for key in ("amina", "bob"):
                learner = (
                    await conn.execute(
                        text(
                            "INSERT INTO learners (learner_key, channel, address, status,"
                            " created_at, updated_at) VALUES (:key, 'sms', :key, 'active', :now,"
                            " :now) RETURNING id"
                        ).bindparams(key=key, now=now)
                    )
                ).scalar_one()
                enrollment_ids.append(
                    (
                        await conn.execute(
                            text(
                                "INSERT INTO enrollments (learner_id, cohort_id, course_id,"
                                " lesson_id, attempt, status, reminders_sent, enrolled_at)"
                                " VALUES (:learner, :cohort, 'ds', 'l8', 0, 'active', 0, :now)"
                                " RETURNING id"
                            ).bindparams(learner=learner, cohort=cohort, now=now)
                        )
                    ).scalar_one()
                )
            # Amina completed l1 twice (a re-push) and l8; answered l2 without completing it.
            # Bob only answered. Another cohort's completion is not Amina's in this one.
            for key, lesson, type_, cohort_id in (
                ("amina", "l1", "lesson_completed", cohort),
                ("amina", "l1", "lesson_completed", cohort),
                ("amina", "l8", "lesson_completed", cohort),
                ("amina", "l2", "answered", cohort),
                ("bob", "l1", "answered", cohort),
                ("amina", "l3", "lesson_completed", cohort + 1),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO events (occurred_at, type, learner_key, cohort_id,"
                        " course_id, lesson_id) VALUES (:now, :type, :key, :cohort, 'ds',"
                        " :lesson)"
                    ).bindparams(now=now, type=type_, key=key, cohort=cohort_id, lesson=lesson)
                )
        await asyncio.to_thread(migrate.upgrade, database_url, "0009")
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT enrollment_id, course_id, lesson_id FROM lesson_completions"
                    " ORDER BY enrollment_id, lesson_id"
                )
            )
            carried = [tuple(row) for row in rows]
        assert carried == [(enrollment_ids[0], "ds", "l1"), (enrollment_ids[0], "ds", "l8")]

        await asyncio.to_thread(migrate.downgrade, database_url, "0008")

        assert "lesson_completions" not in await table_names(database_url)
    finally:
        await engine.dispose()


async def test_0016_counts_the_lessons_delivered_already_folded_and_reverts(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url, "0015")
    engine = create_engine(database_url)
    late = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)  # an hour later is the next UTC day

    def sent(lesson: str, at: datetime, cohort: int | None = 1, channel: str = "sms") -> EventRow:
        return EventRow(
            type=EventType.LESSON_DELIVERED,
            learner_key="amina",
            cohort_id=cohort,
            course_id="ds",
            lesson_id=lesson,
            channel=channel,
            occurred_at=at,
        )

    try:
        async with engine.begin() as conn:
            await append_events(
                conn,
                [
                    sent("l1", late),
                    sent("l1", late + timedelta(hours=1)),
                    sent("l1", late, channel="sandbox"),
                    sent("l2", late, cohort=None),
                ],
            )
            folded = await conn.scalar(select(func.max(events.c.id)))
            # Folded up to here: what comes after is the fold's to count.
            await conn.execute(
                text("INSERT INTO rollup_cursor (name, last_event_id) VALUES ('console', :last)"),
                {"last": folded},
            )
            await append_events(conn, [sent("l2", late)])
        await asyncio.to_thread(migrate.upgrade, database_url, "0016")
        async with engine.connect() as conn:
            d = lesson_days.c
            rows = await conn.execute(
                select(d.course_id, d.lesson_id, d.cohort_id, d.day, d.delivered).order_by(
                    d.lesson_id, d.day
                )
            )
            counted = [tuple(row) for row in rows]
        assert counted == [
            ("ds", "l1", 1, date(2026, 11, 2), 1),
            ("ds", "l1", 1, date(2026, 11, 3), 1),
            ("ds", "l2", None, date(2026, 11, 2), 1),
        ]

        await asyncio.to_thread(migrate.downgrade, database_url, "0015")

        assert "lesson_days" not in await table_names(database_url)
    finally:
        await engine.dispose()
