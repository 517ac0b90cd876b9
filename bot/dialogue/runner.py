"""Where a dialogue turn's transaction runs: on the caller's loop, or in one SQLite thread.

aiosqlite hops to its thread and back for every cursor call (about 4 per statement), and
each hop costs more than the SQLite work itself. On a SQLite file store the whole turn
therefore runs in one dedicated thread, on a plain sqlite3 connection, one hop per
message. That also serialises dialogue writes, which is what SQLite wants: one writer.
On PostgreSQL (asyncpg) the turn runs on the caller's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from bot.store.db import SQLITE_BUSY_TIMEOUT_MS
from bot.store.repository import Db, SyncDb

T = TypeVar("T")
Turn = Callable[[Db], Awaitable[T]]


class Runner(Protocol):
    """Runs a turn inside one transaction, committed if it returns, rolled back if it raises."""

    async def run(self, turn: Turn[T]) -> T:
        """Run `turn` with a connection in a transaction."""
        ...

    async def aclose(self) -> None:
        """Release threads and connections."""
        ...


class AsyncRunner:
    """Turns on the caller's loop, on the AsyncEngine (PostgreSQL, in-memory SQLite)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def run(self, turn: Turn[T]) -> T:
        """Run `turn` in `engine.begin()`."""
        async with self.engine.begin() as conn:
            return await turn(conn)

    async def aclose(self) -> None:
        """Nothing to release: the engine belongs to the caller."""


class SqliteThreadRunner:
    """Turns in one dedicated thread with its own event loop and a sync sqlite3 connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = _sync_engine(engine)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="dialogue-sqlite", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    async def run(self, turn: Turn[T]) -> T:
        """Run `turn` in the worker thread; await its result here."""
        future = asyncio.run_coroutine_threadsafe(self._in_thread(turn), self._started())
        return await asyncio.wrap_future(future)

    async def _in_thread(self, turn: Turn[T]) -> T:
        with self.engine.begin() as connection:
            return await turn(SyncDb(connection))

    async def aclose(self) -> None:
        """Stop the worker thread and close its connection."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join)
            loop.close()
            self._loop = self._thread = None
        self.engine.dispose()


def _sync_engine(engine: AsyncEngine) -> Engine:
    sync = create_sync_engine(engine.url.set(drivername="sqlite"))

    @event.listens_for(sync, "connect")
    def _pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The same settings as bot.store.db; isolation_level None hands transactions to us.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(sync, "begin")
    def _begin_immediate(connection: Connection) -> None:
        # Take the write lock up front: a turn reads then writes, and a deferred transaction
        # that another process wrote under would fail with SQLITE_BUSY instead of waiting.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return sync


def runner_for(engine: AsyncEngine) -> Runner:
    """The thread runner for a SQLite file, else the engine's own loop."""
    database = engine.url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file:")
    if engine.dialect.name == "sqlite" and not in_memory:
        return SqliteThreadRunner(engine)
    return AsyncRunner(engine)
