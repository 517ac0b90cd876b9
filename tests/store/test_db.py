"""The engine: SQLite pragmas on every connection, and UTC-aware timestamps on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import create_engine, utcnow
from bot.store.tables import processed_inbound


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()

    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


async def test_sqlite_creates_its_directory_and_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data" / "learnbot.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            journal_mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            synchronous = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
            busy_timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
    finally:
        await engine.dispose()

    assert path.is_file()
    assert journal_mode == "wal"
    assert synchronous == 1  # NORMAL
    assert foreign_keys == 1
    assert busy_timeout == 5000


async def test_every_pooled_sqlite_connection_gets_the_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'learnbot.db'}")
    try:
        async with engine.connect() as first, engine.connect() as second:
            values = [
                (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
                for conn in (first, second)
            ]
    finally:
        await engine.dispose()

    assert values == [1, 1]


async def insert_and_read(engine: AsyncEngine, when: datetime) -> datetime:
    async with engine.begin() as conn:
        await conn.execute(
            processed_inbound.insert(),
            {"channel": "sms", "provider_id": "SM1", "received_at": when},
        )
        read: datetime = (await conn.execute(select(processed_inbound.c.received_at))).scalar_one()
        return read


async def test_timestamps_round_trip_as_aware_utc(engine: AsyncEngine) -> None:
    nairobi = timezone(timedelta(hours=3))
    sent = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=nairobi)

    read = await insert_and_read(engine, sent)

    assert read == sent
    assert read.tzinfo is not None
    assert read.utcoffset() == timedelta(0)
    assert read.hour == 9  # 12:30 in Nairobi is 09:30 UTC


async def test_timestamp_comparisons_use_utc_on_both_backends(engine: AsyncEngine) -> None:
    await insert_and_read(engine, datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    # The same instant, written in UTC-5: a naive string comparison on SQLite would get it wrong.
    bound = datetime(2024, 5, 1, 4, 0, 1, tzinfo=timezone(timedelta(hours=-5)))

    async with engine.connect() as conn:
        before = await conn.execute(
            select(processed_inbound.c.provider_id).where(processed_inbound.c.received_at < bound)
        )

        assert before.scalars().all() == ["SM1"]


async def test_naive_timestamps_are_refused(engine: AsyncEngine) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        await insert_and_read(engine, datetime(2024, 5, 1, 12, 0))
