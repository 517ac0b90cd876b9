"""Where a dialogue turn's transaction runs: the AsyncEngine, or a sync SQLite connection.

aiosqlite hops to its thread and back for every cursor call (about 4 per statement), and
each hop (~0.2 ms on a busy VM) costs more than the SQLite work itself. On a SQLite file
store a turn therefore runs on a plain sqlite3 connection, taking the write lock up front
(BEGIN IMMEDIATE): inline when the lock is free, in a worker thread that may wait for it
when another writer holds it. On PostgreSQL (asyncpg) the turn uses the AsyncEngine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
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


class SqliteRunner:
    """Turns on a sync sqlite3 connection: inline when the write lock is free, else a thread."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = _sync_engine(engine)
        self._executor: ThreadPoolExecutor | None = None
        # Kept open: a pool checkout (and its reset rollback) per turn costs more than the turn.
        self._inline: Connection | None = None

    async def run(self, turn: Turn[T]) -> T:
        """Run `turn` at once if no other writer holds the database, else in a worker thread."""
        # A turn never waits on anything but the database, and a SQLite statement takes
        # microseconds, so running it on the loop is cheaper than a thread hop (~0.2 ms).
        # Only waiting for another writer's lock would block the loop: that case, rare,
        # goes to a worker thread that may wait for the lock (busy_timeout).
        if self._inline is None:
            self._inline = self.engine.connect()
            _set_busy_timeout(self._inline, 0)  # fail at once rather than block the loop
        try:
            with self._inline.begin():
                return await turn(SyncDb(self._inline))
        except OperationalError as exc:
            if not _is_locked(exc):
                raise
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="dialogue-sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._waiting, turn)

    def _waiting(self, turn: Turn[T]) -> T:
        with self.engine.connect() as connection:
            _set_busy_timeout(connection, SQLITE_BUSY_TIMEOUT_MS)
            with connection.begin():
                return _drive(turn(SyncDb(connection)))

    async def aclose(self) -> None:
        """Stop the worker thread, if any, and close the connections."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        self.engine.dispose()


def _drive(awaitable: Awaitable[T]) -> T:
    """Run a coroutine that never suspends (it only awaits SyncDb) to its result."""
    coroutine = cast(Coroutine[Any, Any, T], awaitable)
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return cast(T, stop.value)
    coroutine.close()
    raise RuntimeError("a dialogue turn awaited something other than the database")


def _set_busy_timeout(connection: Connection, milliseconds: int) -> None:
    # On the sqlite3 connection itself: through SQLAlchemy it would open a transaction.
    driver = cast(sqlite3.Connection, connection.connection.driver_connection)
    driver.execute(f"PRAGMA busy_timeout={milliseconds}")


def _is_locked(exc: OperationalError) -> bool:
    return "locked" in str(exc.orig) or "busy" in str(exc.orig)


def _sync_engine(engine: AsyncEngine) -> Engine:
    # check_same_thread off: a connection may serve the loop's thread, then the worker's
    # (never both at once: the pool hands it to one user at a time).
    sync = create_sync_engine(
        engine.url.set(drivername="sqlite"), connect_args={"check_same_thread": False}
    )

    @event.listens_for(sync, "connect")
    def _pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The same settings as bot.store.db; isolation_level None hands transactions to us.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
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
        return SqliteRunner(engine)
    return AsyncRunner(engine)
