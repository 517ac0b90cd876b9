"""Delivery page, a learner's timeline, a cohort's report, and the list of pages."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.console.delivery import by_channel, delivery
from bot.analytics.console.pages import PAGES
from bot.analytics.console.report import cohort_report
from bot.analytics.console.timeline import learner_timeline
from bot.analytics.figures import Filters
from bot.analytics.pseudonym import pseudonym
from bot.store.tables import deliveries
from tests.analytics.conftest import Console
from tests.analytics.console_world import SANDBOX, SECRET
from tests.analytics.test_console_overview import table

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_deliveries_by_channel_errors_cost_and_templates(console: Console) -> None:
    async with console.engine.connect() as conn:
        channels, errors, cost, templates = await delivery(
            conn, Filters(), console.admin, console.context
        )
    rows = {row["channel"]: row for row in table(channels)}
    assert set(rows) == {"telegram", "whatsapp", "sms"}  # no sandbox
    # Telegram: 9 North lessons, a reply to n00 (no cohort), 2 South sent and 1 failed.
    telegram = rows["telegram"]
    assert (telegram["planned"], telegram["sent"], telegram["failed"]) == (13, 12, 1)
    sms = rows["sms"]
    assert (sms["planned"], sms["sent"], sms["delivered"], sms["failed"]) == (6, 5, 4, 1)
    assert (rows["whatsapp"]["planned"], rows["whatsapp"]["delivered"]) == (2, 2)
    assert table(errors) == [
        {"channel": "sms", "error": "30003", "failed": 1},
        {"channel": "telegram", "error": "retryable", "failed": 1},
    ]
    # Four Senegalese numbers sent 2 segments each; the Kenyan number (SN profile) 3.
    assert table(cost) == [
        {"country": "KE", "messages": 1, "segments": 3, "price": 0.0079, "cost": 3 * 0.0079},
        {"country": "SN", "messages": 4, "segments": 8, "price": 0.031, "cost": 8 * 0.031},
    ]
    assert table(templates) == [{"locale": "en", "sent": 1, "delivered": 1, "failed": 0}]


async def test_a_trainer_sees_their_cohorts_deliveries_only(console: Console) -> None:
    async with console.engine.connect() as conn:
        channels, errors, _, _ = await delivery(conn, Filters(), console.tom, console.context)
    telegram = next(row for row in table(channels) if row["channel"] == "telegram")
    assert (telegram["planned"], telegram["failed"]) == (9, 0)  # no reply, no South
    assert [row["error"] for row in table(errors)] == ["30003"]


async def test_deliveries_still_with_the_dispatcher_are_planned_and_waiting(
    console: Console,
) -> None:
    # On PostgreSQL queued rows are not in the console's index: the claim index counts them.
    async with console.engine.connect() as conn:
        sent = (await conn.execute(select(deliveries).limit(1))).mappings().one()
        queued = {key: value for key, value in sent.items() if key != "id"}
        await conn.execute(
            insert(deliveries),
            [
                {**queued, "lesson_id": "queued-1", "status": "pending", "sent_at": None},
                {**queued, "lesson_id": "queued-2", "status": "sending", "sent_at": None},
            ],
        )
        before = {
            row["channel"]: row for row in table(await by_channel(conn, Filters(), console.admin))
        }
        await conn.rollback()
        after = {
            row["channel"]: row for row in table(await by_channel(conn, Filters(), console.admin))
        }
    channel = str(sent["channel"])
    assert before[channel]["waiting"] == after[channel]["waiting"] + 2
    assert before[channel]["planned"] == after[channel]["planned"] + 2
    assert before[channel]["sent"] == after[channel]["sent"]


Statement = tuple[str, Any]


@contextmanager
def statements_run(engine: AsyncEngine) -> Iterator[list[Statement]]:
    """Every statement the engine runs inside the block, as the driver gets it."""
    statements: list[Statement] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)


async def postgres_plans(
    engine: AsyncEngine, statements: list[Statement], *, without: Sequence[str]
) -> list[str]:
    """PostgreSQL's plans of these statements with these indexes dropped (then restored)."""
    plans: list[str] = []
    async with engine.connect() as conn:
        for index in without:
            await conn.exec_driver_sql(f"DROP INDEX {index}")
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for sql, params in statements:
            rows = await conn.exec_driver_sql("EXPLAIN " + sql, params)
            plans.append(" ".join(str(row[0]) for row in rows))
        await conn.rollback()
    return plans


async def test_the_delivery_figures_read_the_consoles_index(console: Console) -> None:
    # PostgreSQL's index leaves out pending and sending rows (0015): a query may use it only
    # if its WHERE repeats that predicate, as written. Shown with the other candidate indexes
    # dropped in a transaction rolled back. SQLite's index is whole: no query repeats it.
    with statements_run(console.engine) as statements:
        async with console.engine.connect() as conn:
            await delivery(conn, Filters(), console.admin, console.context)
    settled = [(sql, params) for sql, params in statements if "NOT IN ('pending'" in sql]
    if console.engine.dialect.name == "sqlite":
        assert settled == []
        return
    assert len(settled) == 4  # by channel (settled rows), errors, SMS cost, templates
    candidates = ("ix_deliveries_claim", "ix_deliveries_learner")
    plans = await postgres_plans(console.engine, settled, without=candidates)
    assert all("ix_deliveries_console" in plan for plan in plans), plans


def learner(console: Console, name: str) -> str:
    return pseudonym(SECRET, console.world.learner[name]["learner_key"])


async def test_a_timeline_in_time_order_within_scope(console: Console) -> None:
    async with console.engine.connect() as conn:
        tom = await learner_timeline(conn, learner(console, "n00"), console.tom, console.context)
        admin = await learner_timeline(
            conn, learner(console, "n00"), console.admin, console.context
        )
        una = await learner_timeline(conn, learner(console, "n00"), console.una, console.context)
        sandbox = await learner_timeline(
            conn, learner(console, SANDBOX), console.admin, console.context
        )
        unknown = await learner_timeline(conn, "0" * 16, console.admin, console.context)
    assert una is None and sandbox is None and unknown is None
    assert tom is not None and admin is not None
    rows = table(tom)
    assert [row["at"] for row in rows] == sorted(row["at"] for row in rows)
    assert (rows[0]["source"], rows[0]["what"]) == ("event", "enrolled")
    assert {"event", "delivery"} == {row["source"] for row in rows}
    assert ("delivery", "lesson:sent") in {(row["source"], row["what"]) for row in rows}
    # The reply belongs to no cohort: an admin sees it, a trainer does not.
    assert len(table(admin)) == len(rows) + 1
    assert "address" not in {column.key for column in tom.columns}


async def test_only_an_admin_may_reveal_the_address(console: Console) -> None:
    name = learner(console, "n10")
    async with console.engine.connect() as conn:
        admin = await learner_timeline(conn, name, console.admin, console.context, reveal=True)
        tom = await learner_timeline(conn, name, console.tom, console.context, reveal=True)
    assert admin is not None and tom is not None
    assert {row["address"] for row in table(admin)} == {"+221770000010"}
    assert "address" not in {column.key for column in tom.columns}


async def test_a_cohort_report_for_its_readers_only(console: Console) -> None:
    north = console.world.north
    async with console.engine.connect() as conn:
        report = await cohort_report(conn, north, console.tom, console.context)
        hidden = await cohort_report(conn, north, console.una, console.context)
    assert hidden == ()
    keys = [f.key for f in report]
    assert keys == ["cohorts", "funnel", "gain", "confidence", "ratings", "delivery", "sms_cost"]
    assert [row["enrolled"] for row in table(report[0])] == [16]


async def test_every_page_builds_for_every_reader(console: Console) -> None:
    assert [page.key for page in PAGES] == [
        "overview",
        "funnel",
        "questions",
        "gain",
        "survey",
        "who",
        "delivery",
    ]
    async with console.engine.connect() as conn:
        for page in PAGES:
            for scope in (console.admin, console.tom, console.una):
                for filters in (Filters(), Filters(course_id="digital-skills", since=None)):
                    figures = await page.build(conn, filters, scope, console.context)
                    assert figures, page.key
                    for found in figures:
                        widths = {len(row) for row in found.rows}
                        assert widths <= {len(found.columns)}, (page.key, found.key)
                        if found.chart is not None:
                            keys = {column.key for column in found.columns}
                            assert {found.chart.x, *found.chart.series} <= keys, found.key


async def test_every_page_names_event_types_as_literals_and_reads_the_stage_index(
    console: Console,
) -> None:
    # PostgreSQL's ix_events_stage leaves lesson_delivered out (0016): a query reads it only
    # where the planner can prove the type is another, which a parameter never proves in a
    # generic plan. Shown with the other event indexes dropped in a transaction rolled back.
    with statements_run(console.engine) as statements:
        async with console.engine.connect() as conn:
            for page in PAGES:
                for filters in (Filters(), Filters(since=date(2026, 1, 1), until=date(2027, 1, 1))):
                    await page.build(conn, filters, console.admin, console.context)
    typed = [(sql, params) for sql, params in statements if "events.type" in sql]
    assert len(typed) >= 6  # funnel (completed, answered), questions, gain, survey
    for sql, _ in typed:
        assert re.search(r"events\.type (= |IN \()'", sql), sql
    if console.engine.dialect.name != "postgresql":
        return
    others = ("ix_events_cohort", "ix_events_occurred_at", "ix_events_learner")
    plans = await postgres_plans(console.engine, typed, without=others)
    assert all("ix_events_stage" in plan for plan in plans), plans
