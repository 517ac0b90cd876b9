"""Which store errors may pass (503, back off) and which are bugs; one log line per outage."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.availability import (
    StoreOutage,
    StoreUnavailable,
    store_outage,
    unavailable_reason,
    write_heartbeat,
)
from bot.store.db import utcnow
from bot.store.tables import cohorts, processed_inbound


def sqlite_error(path: Path, *pragmas: str, statement: str) -> DBAPIError:
    """The error SQLAlchemy raises for `statement` on a SQLite file after `pragmas`."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x TEXT)"))
    try:
        with engine.begin() as conn:
            for pragma in pragmas:
                conn.exec_driver_sql(pragma)
            conn.exec_driver_sql(statement)
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statement} went through")


def test_a_full_database_is_disk_full(tmp_path: Path) -> None:
    error = sqlite_error(
        tmp_path / "db",
        "PRAGMA max_page_count=3",
        statement="INSERT INTO t SELECT hex(randomblob(4000)) FROM (SELECT 1 UNION SELECT 2)",
    )
    assert "database or disk is full" in str(error)
    assert unavailable_reason(error) == "disk full"


def test_a_read_only_database_is_read_only(tmp_path: Path) -> None:
    error = sqlite_error(tmp_path / "db", "PRAGMA query_only=1", statement="DELETE FROM t")
    assert unavailable_reason(error) == "read-only"


def test_a_read_only_file_opened_read_only_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        connection.execute("INSERT INTO t VALUES (1)")
    assert unavailable_reason(caught.value) == "read-only"


async def test_a_violated_constraint_is_a_bug_not_an_outage(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError) as caught:
        async with engine.begin() as conn:
            await conn.execute(insert(cohorts).values(name=None))
    assert unavailable_reason(caught.value) is None


@pytest.mark.postgres
async def test_a_read_only_postgresql_transaction_is_read_only(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's own read-only transactions")
    with pytest.raises(DBAPIError) as caught:
        async with engine.begin() as conn:
            await conn.execute(text("SET TRANSACTION READ ONLY"))
            await write_heartbeat(conn, "test", utcnow())
    assert unavailable_reason(caught.value) == "read-only"


def test_errors_raised_from_a_store_error_keep_its_reason() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as exc:
            raise StoreUnavailable("unreachable") from exc
    except StoreUnavailable as outer:
        assert unavailable_reason(outer) == "unreachable"
    assert unavailable_reason(ValueError("a bug")) is None


async def test_the_heartbeat_is_one_row_per_worker(engine: AsyncEngine) -> None:
    for _ in range(3):
        async with engine.begin() as conn:
            await write_heartbeat(conn, "host:1", utcnow())
    async with engine.connect() as conn:
        found = (await conn.execute(processed_inbound.select())).all()
    assert [(row.channel, row.provider_id) for row in found] == [("healthz", "host:1")]


def test_an_outage_is_said_once_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = StoreOutage("dispatcher (sms)", first=1.0, longest=8.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO)

    delays = [outage.refused("disk full") for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert not outage.ready()
    now[0] = 100.0
    assert outage.ready()
    assert outage.current(within=60) is None  # the last refusal is too old to vouch for
    outage.refused("read-only")
    assert outage.current(within=60) == "read-only"
    outage.succeeded()
    outage.succeeded()

    assert [r.getMessage() for r in caplog.records] == [
        "dispatcher (sms): the store refuses writes (disk full); retrying with backoff",
        "dispatcher (sms): the store still refuses writes, now: read-only",
        "dispatcher (sms): the store takes writes again after 100 s (7 refused)",
    ]
    assert outage.ready() and outage.current(within=60) is None


def test_each_engine_has_one_record_of_refused_turns(engine: AsyncEngine) -> None:
    assert store_outage(engine) is store_outage(engine)
