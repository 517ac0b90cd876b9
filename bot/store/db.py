"""The async engine for SQLite (aiosqlite, WAL) or PostgreSQL (asyncpg), and `utcnow`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

# How long a writer waits for SQLite's single write lock before giving up (ms).
SQLITE_BUSY_TIMEOUT_MS = 5000


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (what every Timestamp column takes)."""
    return datetime.now(UTC)


def create_engine(database_url: str, *, foreign_keys: bool = True) -> AsyncEngine:
    """An AsyncEngine for `sqlite+aiosqlite:///path` or `postgresql+asyncpg://...`."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, foreign_keys=foreign_keys)
    # Several bot processes share one server: keep each pool modest, and check connections
    # on checkout so a server restart or an idle-timeout drop does not fail a request.
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_timeout=30,
        pool_recycle=1800,
        pool_pre_ping=True,
    )


def _sqlite_engine(url: URL, *, foreign_keys: bool) -> AsyncEngine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _set_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # WAL lets readers (dashboard, export) run while the dispatcher writes; NORMAL is
        # durable in WAL mode except for the last commits on power loss, and much faster.
        # SQLite leaves foreign keys off unless asked, per connection.
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    return engine
