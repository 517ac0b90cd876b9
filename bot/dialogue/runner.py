"""Where a dialogue turn's transaction runs: the AsyncEngine, or a sync SQLite connection.

aiosqlite hops to its thread and back for every cursor call (about 4 per statement), and
each hop (~0.2 ms on a busy VM) costs more than the SQLite work itself. On a SQLite file
store a turn therefore runs on a plain sqlite3 connection, taking the write lock up front
(BEGIN IMMEDIATE), inline on the loop. When another writer holds the lock the turn waits
on the loop (short sleeps, retrying) in arrival order, and turns arriving meanwhile queue
behind it. On PostgreSQL (asyncpg) the turn uses the AsyncEngine.

Why not wait in a worker thread: a thread holding the write lock needs the GIL back after
every statement, and a busy loop keeps it for up to 5 ms each time, so one turn in the thread
held the lock for tens of ms, every inline turn then failed and queued behind it, and under
load the queue never drained (seconds of latency at 300 webhooks/s).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from bot.store.availability import StoreOutage, unavailable_reason
from bot.store.db import SQLITE_BUSY_TIMEOUT_MS
from bot.store.fastpath import FastStatements
from bot.store.repository import Db, SyncDb

log = logging.getLogger(__name__)

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


# How often the checkpointer thread copies the WAL into the database file.
CHECKPOINT_SECONDS = 0.25


class WalCheckpointer:
    """Checkpoints a SQLite file's WAL from a thread of its own, so no turn's commit pays for it.

    With SQLite's automatic checkpoint the commit that takes the WAL past 1,000 pages copies
    them into the database file and syncs it, inline: about 10 ms, 7 times a second at 500
    webhooks/s (measured), a pause every webhook arriving meanwhile queued behind. Here the
    runner's connection turns that off and this thread runs PASSIVE checkpoints, which never
    wait for writers or readers (sqlite3 releases the GIL while it works).
    """

    def __init__(self, path: str, interval: float = CHECKPOINT_SECONDS) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="learnbot-wal-checkpoint", daemon=True
        )

    def start(self) -> None:
        """Begin checkpointing every `interval` seconds."""
        self._thread.start()

    def stop(self) -> None:
        """Run a last checkpoint and end the thread."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        outage = StoreOutage(f"WAL checkpoint of {self.path}")
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    # The next round tries again; meanwhile the WAL only grows. A full disk or
                    # a read-only file is said once, not four tracebacks a second.
                    reason = unavailable_reason(exc)
                    if reason is None:
                        log.exception("WAL checkpoint of %s failed", self.path)
                    else:
                        outage.refused(reason)
                else:
                    outage.succeeded()
                if stopping:
                    return
        finally:
            connection.close()


# While another writer holds the lock: the first retry after 1 ms, then doubling up to 10 ms.
FIRST_PAUSE = 0.001
LONGEST_PAUSE = 0.01


class SqliteRunner:
    """Turns on a sync sqlite3 connection, inline on the loop; they wait their turn for the lock."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = _sync_engine(engine)
        # Kept open: a pool checkout (and its reset rollback) per turn costs more than the turn.
        self._inline: Connection | None = None
        self._queue: asyncio.Lock | None = None  # FIFO: turns waiting for the lock, in order
        self._queued = 0
        self._checkpointer: WalCheckpointer | None = None
        self._fast = FastStatements(self.engine.dialect)

    async def run(self, turn: Turn[T]) -> T:
        """Run `turn` at once if no other writer holds the database, else when it lets go."""
        # A turn never waits on anything but the database, and a SQLite statement takes
        # microseconds, so running it on the loop is cheaper than a thread hop (~0.2 ms).
        if not self._queued:
            try:
                return await self._attempt(turn)
            except OperationalError as exc:
                if not _is_locked(exc):
                    raise
        # Another writer (another process, or this one's AsyncEngine) holds the lock. Queue,
        # so one learner's messages keep their order, and retry without blocking the loop.
        if self._queue is None:
            self._queue = asyncio.Lock()
        self._queued += 1
        try:
            async with self._queue:
                return await self._wait_and_run(turn)
        finally:
            self._queued -= 1

    async def _attempt(self, turn: Turn[T]) -> T:
        if self._inline is None:
            self._inline = self.engine.connect()
            _set_busy_timeout(self._inline, 0)  # fail at once rather than block the loop
            self._start_checkpointer(self._inline)
        # Take the write lock up front: a turn reads then writes, and a deferred transaction
        # that another process wrote under would fail with SQLITE_BUSY instead of waiting.
        # On the sqlite3 connection itself, not through a "begin" event listener: any
        # connection listener makes SQLAlchemy dispatch events around every statement.
        _begin_immediate(self._inline)
        # The turn only awaits SyncDb, which never suspends: the transaction is never open
        # across a loop iteration, so the lock is held for the statements' time only.
        # (pysqlite's begin() is a no-op; its commit and rollback end our transaction.)
        with self._inline.begin():
            return await turn(SyncDb(self._inline, self._fast))

    async def _wait_and_run(self, turn: Turn[T]) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
        pause = FIRST_PAUSE
        while True:
            try:
                return await self._attempt(turn)
            except OperationalError as exc:
                if not _is_locked(exc) or loop.time() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(2 * pause, LONGEST_PAUSE)

    def _start_checkpointer(self, connection: Connection) -> None:
        if self._checkpointer is not None or not self.engine.url.database:
            return
        driver = cast(sqlite3.Connection, connection.connection.driver_connection)
        driver.execute("PRAGMA wal_autocheckpoint=0")  # the thread below does it instead
        checkpointer = self._checkpointer = WalCheckpointer(self.engine.url.database)
        checkpointer.start()
        # A runner dropped without aclose (a test) must not leave its thread behind.
        weakref.finalize(self, checkpointer._stop.set)

    async def aclose(self) -> None:
        """Close the connection and stop the checkpointer."""
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.engine.dispose()


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

    return sync


def _begin_immediate(connection: Connection) -> None:
    driver = cast(sqlite3.Connection, connection.connection.driver_connection)
    try:
        driver.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        # As SQLAlchemy would wrap it, so callers see one kind of error.
        raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc


def runner_for(engine: AsyncEngine) -> Runner:
    """The thread runner for a SQLite file, else the engine's own loop."""
    database = engine.url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file:")
    if engine.dialect.name == "sqlite" and not in_memory:
        return SqliteRunner(engine)
    return AsyncRunner(engine)
