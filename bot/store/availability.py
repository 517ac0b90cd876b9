"""When the store refuses writes: a typed error, its reason, and one log line per outage.

A disk full, a read-only file or volume, a lock held past the busy timeout, a server that
is unreachable, read-only (a hot standby) or out of resources: retrying later may succeed,
so a webhook answers 503 (the provider retries) instead of apologising to the learner and
losing the message, and the dispatcher and the jobs back off instead of logging a traceback
a second. A bug (a constraint violated, bad SQL) is not one of these: a retry fails alike.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import weakref
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.tables import processed_inbound

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The store refused a write for a reason that may pass (disk full, read-only, down)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# SQLite primary result codes (the low byte of an extended code) that a retry may outlive.
_SQLITE_REASONS = {
    sqlite3.SQLITE_FULL: "disk full",
    sqlite3.SQLITE_READONLY: "read-only",
    sqlite3.SQLITE_BUSY: "locked by another writer",
    sqlite3.SQLITE_LOCKED: "locked by another writer",
    sqlite3.SQLITE_IOERR: "I/O error",
    sqlite3.SQLITE_CANTOPEN: "cannot open the database file",
    sqlite3.SQLITE_PERM: "permission denied",
    sqlite3.SQLITE_NOMEM: "out of memory",
    sqlite3.SQLITE_PROTOCOL: "locked by another writer",
}
# PostgreSQL SQLSTATEs (exact, then by class) that a retry may outlive.
_PG_STATES = {
    "53100": "disk full",
    "25006": "read-only",  # read_only_sql_transaction: a standby, or default_transaction_read_only
    "57P01": "unreachable (server shutting down)",
    "57P02": "unreachable (server crashed)",
    "57P03": "unreachable (server starting or in recovery)",
    "40001": "busy (serialization conflict)",
    "40P01": "busy (deadlock)",
    "55P03": "busy (lock not available)",
}
_PG_CLASSES = {"08": "unreachable", "53": "out of resources", "58": "I/O error"}


def unavailable_reason(error: BaseException) -> str | None:
    """Why the store refused, when `error` (or what caused it) may pass; None for a bug."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = _reason(current)
        if reason is not None:
            return reason
        current = current.__cause__  # raised *from* a store error (not merely during one)
    return None


def _reason(error: BaseException) -> str | None:
    if isinstance(error, StoreUnavailable):
        return error.reason
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return "unreachable (connection lost)"
        found = _driver_reason(error.orig)
        if found is not None:
            return found
        if isinstance(error, sa_exc.InterfaceError):
            return "unreachable"
        return None
    if isinstance(error, sa_exc.TimeoutError):
        return "busy (no connection free in the pool)"
    if isinstance(error, sqlite3.Error):
        return _driver_reason(error)
    if isinstance(error, TimeoutError):  # an OSError too, since Python 3.3
        return "timed out"
    if isinstance(error, OSError):
        return "unreachable"  # asyncpg raises the socket's own error when it cannot connect
    return None


def _driver_reason(orig: BaseException | None) -> str | None:
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return _SQLITE_REASONS.get(code & 0xFF)
        text = str(orig)  # a driver error built without a code (rare): its words
        if "disk is full" in text:
            return "disk full"
        if "readonly" in text:
            return "read-only"
        if "locked" in text or "busy" in text:
            return "locked by another writer"
        return None
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str) and len(state) == 5:
        return _PG_STATES.get(state) or _PG_CLASSES.get(state[:2])
    return None


# Backing off while the store refuses: 1 s, 2 s, 4 s ... at most a minute between tries.
FIRST_BACKOFF = 1.0
LONGEST_BACKOFF = 60.0


class StoreOutage:
    """One part's view of an outage: a warning when it starts, an info line when it ends.

    `refused` is called for every refused write and logs only the first (or a new reason);
    `succeeded` logs the recovery once. Between them `delay` doubles, for callers that back
    off, and `wait_until` says when the next try is due.
    """

    def __init__(
        self,
        who: str,
        *,
        first: float = FIRST_BACKOFF,
        longest: float = LONGEST_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.who = who
        self.first = first
        self.longest = longest
        self.clock = clock
        self.reason: str | None = None  # None while the store takes writes
        self.since = 0.0
        self.last_refused = 0.0
        self.refusals = 0
        self.delay = 0.0
        self.wait_until = 0.0

    def refused(self, reason: str) -> float:
        """Record a refused write; the seconds to wait before the next try."""
        now = self.clock()
        if self.reason is None:
            log.warning(
                "%s: the store refuses writes (%s); retrying with backoff", self.who, reason
            )
            self.since, self.refusals, self.delay = now, 0, self.first
        elif reason != self.reason:
            log.warning("%s: the store still refuses writes, now: %s", self.who, reason)
        else:
            self.delay = min(self.longest, self.delay * 2)
        self.reason = reason
        self.refusals += 1
        self.last_refused = now
        self.wait_until = now + self.delay
        return self.delay

    def succeeded(self) -> None:
        """Record a write that went through: ends the outage (and says so) if there was one."""
        if self.reason is None:
            return
        log.warning(
            "%s: the store takes writes again after %.0f s (%d refused)",
            self.who,
            self.clock() - self.since,
            self.refusals,
        )
        self.reason = None
        self.delay = 0.0
        self.wait_until = 0.0

    def ready(self) -> bool:
        """Whether a try is due (always, unless an outage's backoff is running)."""
        return self.reason is None or self.clock() >= self.wait_until

    def current(self, within: float) -> str | None:
        """The outage's reason if a write was refused in the last `within` seconds."""
        if self.reason is None or self.clock() - self.last_refused > within:
            return None
        return self.reason


# The heartbeat lives in processed_inbound under a channel no provider has: a committed
# write of one row, with no table (and no migration) of its own; pruning keeps it because
# every check refreshes it.
HEARTBEAT_CHANNEL = "healthz"
_HEARTBEAT = {
    is_pg: (postgresql.insert if is_pg else sqlite.insert)(processed_inbound)
    for is_pg in (False, True)
}


async def write_heartbeat(conn: AsyncConnection, worker: str, now: datetime) -> None:
    """Upsert this process's heartbeat row (commit it to prove the store takes writes)."""
    insert = _HEARTBEAT[conn.dialect.name == "postgresql"]
    statement = insert.values(
        channel=HEARTBEAT_CHANNEL, provider_id=worker[:64], received_at=now
    ).on_conflict_do_update(index_elements=["channel", "provider_id"], set_={"received_at": now})
    await conn.execute(statement)


_TURN_OUTAGES: weakref.WeakKeyDictionary[Engine, StoreOutage] = weakref.WeakKeyDictionary()


def store_outage(engine: AsyncEngine) -> StoreOutage:
    """The outage record of the turns (webhooks) on `engine`, shared with /healthz."""
    key = engine.sync_engine
    found = _TURN_OUTAGES.get(key)
    if found is None:
        found = _TURN_OUTAGES[key] = StoreOutage("webhooks")
    return found
