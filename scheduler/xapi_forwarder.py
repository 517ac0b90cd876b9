"""The xAPI forwarder: the event log, in id order, to the LRS, from a durable cursor.

One process forwards at a time (a lease in `xapi_cursor`); another takes over when its lease
runs out, or at once when the holder is a dead process on the same machine. A batch is sent,
then the cursor moves past it: a crash in between sends the batch again, and the LRS, which
keeps one statement per id (ids are UUID v5 of event ids), stores nothing twice. A batch the
LRS refuses (400) is halved until the refused statements are found; they are parked with the
reason and the rest goes on. Network errors, 5xx and 429 are retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.xapi.log import CURSOR, assessment_scores, events_after
from bot.analytics.xapi.statements import EventRecord, StatementMapper, UnmappableEvent
from bot.domain import EventType
from bot.store import xapi_state
from bot.store.availability import StoreOutage, unavailable_reason
from bot.store.db import utcnow
from scheduler.lrs_client import LrsClient, PostResult

log = logging.getLogger(__name__)

DEFAULT_BATCH = 100
LEASE = timedelta(seconds=15)
POLL_SECONDS = 0.5  # how often an idle forwarder looks for new events
# A missing id below newer ones is a transaction still open (PostgreSQL hands out ids before
# commit) or one rolled back: wait this long for it before going on without it.
GAP_WAIT_SECONDS = 10.0
FIRST_BACKOFF = 0.5
LONGEST_BACKOFF = 30.0


class LrsUnavailable(Exception):
    """The LRS did not take a batch (network error, 5xx, 429, auth): retry later."""

    def __init__(self, result: PostResult) -> None:
        super().__init__(result.reason)
        self.result = result


@dataclass
class ForwardingStats:
    """What this process forwarded, for logs, tests and the benchmark."""

    stored: int = 0  # statements the LRS took (or already held: 409 counted as done)
    conflicts: int = 0
    parked: int = 0
    posts: int = 0
    failures: int = 0
    batches: list[int] = field(default_factory=list)


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Take a dropped read-ahead's error, so asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


def holder_id() -> str:
    """This process, as lease holder: host, pid and a random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(holder: str | None) -> bool:
    """Whether a lease holder is a process of this machine that no longer runs."""
    if holder is None:
        return False
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:30] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


@dataclass
class _Prepared:
    """A batch read and mapped: the events after `after`, their statements, the unmappable."""

    after: int
    rows: list[EventRecord]
    batch: list[tuple[EventRecord, dict[str, Any]]] = field(default_factory=list)
    parked: list[xapi_state.Parked] = field(default_factory=list)


class XapiForwarder:
    """Sends every event as a statement, exactly once in the LRS, in batches."""

    def __init__(
        self,
        engine: AsyncEngine,
        client: LrsClient,
        mapper: StatementMapper,
        *,
        batch: int = DEFAULT_BATCH,
        lease: timedelta = LEASE,
        poll_seconds: float = POLL_SECONDS,
        gap_wait_seconds: float = GAP_WAIT_SECONDS,
        holder: str | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.mapper = mapper
        self.batch = batch
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.gap_wait_seconds = gap_wait_seconds
        self.holder = holder or holder_id()
        self.stats = ForwardingStats()
        self.store_outage = StoreOutage("xAPI forwarder", longest=LONGEST_BACKOFF)
        self._lrs_delay = 0.0
        self._lrs_down_since: float | None = None
        self._gaps: dict[int, float] = {}  # first missing id -> when first seen
        self._ahead: _Prepared | None = None  # the next batch, read while the last was sent
        self._lease_fresh_until = 0.0  # monotonic: no need to renew the lease before this
        self._cursor: int | None = None  # where the cursor was at our last write
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    def stop(self) -> None:
        """Finish the batch in flight, then return from `run_forever`."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """New events were logged: look now rather than at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Forward until stopped; give the lease up at the end."""
        try:
            while not self._stopping.is_set():
                pause = await self._pass()
                if pause > 0:
                    await self._sleep(pause)
        finally:
            await self._release()

    async def _pass(self) -> float:
        """One pass; the seconds to wait before the next."""
        try:
            sent = await self.forward_once()
        except LrsUnavailable as exc:
            return self._lrs_refused(exc.result)
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                log.exception("xAPI forwarding failed")
                return LONGEST_BACKOFF
            return self.store_outage.refused(reason)
        self.store_outage.succeeded()
        if sent is None:  # another process forwards
            return self.lease.total_seconds() / 3
        return 0.0 if sent >= self.batch else self.poll_seconds

    async def forward_once(self) -> int | None:
        """Send the next batch; the events it settled, or None if another process leads."""
        cursor = await self._hold_lease()
        if cursor is None:
            return None
        ahead, self._ahead = self._ahead, None
        prepared = ahead if ahead is not None and ahead.after == cursor else None
        if prepared is None:
            prepared = await self._prepare(cursor)
        if not prepared.rows:
            return 0
        last = prepared.rows[-1].id
        # Read and map the next batch while this one is on the wire: the LRS's time is the
        # forwarder's only wait.
        reading = asyncio.create_task(self._prepare(last))
        reading.add_done_callback(_retrieved)
        try:
            parked = prepared.parked + await self._deliver(prepared.batch)
            self._lrs_recovered()
            done = utcnow()
            async with self.engine.begin() as conn:
                await xapi_state.park(conn, parked, done)
                held = await xapi_state.advance(
                    conn, CURSOR, self.holder, (cursor, last), done, lease_until=done + self.lease
                )
        except BaseException:
            reading.cancel()  # the batch goes again at the next pass; so does its read-ahead
            raise
        self._held(last if held else None)
        if not held:  # a backfill moved the cursor, or another process took the lease
            reading.cancel()
        else:
            try:
                self._ahead = await reading
            except Exception:  # read again at the next pass
                self._ahead = None
        self.stats.parked += len(parked)
        self.stats.batches.append(len(prepared.rows))
        return len(prepared.rows)

    async def _hold_lease(self) -> int | None:
        """Take or renew the lease; the cursor, or None if another process holds it."""
        if time.monotonic() < self._lease_fresh_until and self._cursor is not None:
            # Renewed a moment ago (with the last cursor move): read, no write while idle.
            async with self.engine.connect() as conn:
                found = await xapi_state.cursor_of(conn, CURSOR, self.holder)
            if found is not None:
                return found  # a backfill may have moved it back
        now = utcnow()
        async with self.engine.begin() as conn:
            await xapi_state.ensure_cursor(conn, CURSOR)
            holder = await xapi_state.current_holder(conn, CURSOR)
            cursor = await xapi_state.take_lease(
                conn,
                CURSOR,
                self.holder,
                now,
                self.lease,
                steal_from=holder if _dead_here(holder) else None,
            )
        self._held(cursor)
        return cursor

    def _held(self, cursor: int | None) -> None:
        """Remember the cursor and how long the lease needs no renewing (None: not ours)."""
        self._cursor = cursor
        fresh = self.lease.total_seconds() / 3
        self._lease_fresh_until = time.monotonic() + fresh if cursor is not None else 0.0

    async def _prepare(self, cursor: int) -> _Prepared:
        """The events after `cursor` (up to a young gap), mapped to statements."""
        async with self.engine.connect() as conn:
            rows = self._settled(cursor, await events_after(conn, cursor, self.batch))
            scores = await assessment_scores(conn, [r for r in rows if self._scored(r)])
        prepared = _Prepared(cursor, rows)
        for row in rows:
            try:
                prepared.batch.append((row, self.mapper.statement(row, scores.get(row.id))))
            except UnmappableEvent as exc:
                prepared.parked.append(self._parked(row, 0, str(exc)))
        return prepared

    def _scored(self, row: EventRecord) -> bool:
        if row.type != EventType.LESSON_COMPLETED.value or not row.course_id:
            return False
        loaded = self.mapper.courses.get(row.course_id)
        return loaded is not None and row.lesson_id in loaded.assessments()

    def _settled(self, cursor: int, rows: Sequence[EventRecord]) -> list[EventRecord]:
        """The rows up to the first gap still young enough to be an open transaction."""
        settled: list[EventRecord] = []
        expected = cursor + 1
        clock = time.monotonic()
        for row in rows:
            if row.id != expected and cursor > 0:
                first_seen = self._gaps.setdefault(expected, clock)
                if clock - first_seen < self.gap_wait_seconds:
                    break
                log.info("xAPI: events %d to %d never committed; going on", expected, row.id - 1)
            settled.append(row)
            expected = row.id + 1
        self._gaps = {gap: seen for gap, seen in self._gaps.items() if gap >= expected}
        return settled

    async def _deliver(
        self, batch: Sequence[tuple[EventRecord, dict[str, Any]]]
    ) -> list[xapi_state.Parked]:
        """POST a batch; halve a refused one until the refused statements are found."""
        if not batch:
            return []
        self.stats.posts += 1
        result = await self.client.post([statement for _, statement in batch])
        if result.outcome == "stored":
            self.stats.stored += len(batch)
            return []
        if result.outcome == "unavailable":
            raise LrsUnavailable(result)
        if len(batch) == 1:
            row = batch[0][0]
            if result.outcome == "conflict":
                # The LRS holds a statement with this id already: sent before, done.
                self.stats.conflicts += 1
                self.stats.stored += 1
                return []
            log.warning("xAPI: the LRS refused event %d's statement: %s", row.id, result.reason)
            return [self._parked(row, result.status_code, result.reason)]
        half = len(batch) // 2
        return await self._deliver(batch[:half]) + await self._deliver(batch[half:])

    def _parked(self, row: EventRecord, code: int, reason: str) -> xapi_state.Parked:
        return xapi_state.Parked(row.id, self.mapper.statement_id(row.id), code, reason)

    def _lrs_refused(self, result: PostResult) -> float:
        self.stats.failures += 1
        if self._lrs_down_since is None:
            log.warning("xAPI: the LRS is unavailable (%s); retrying with backoff", result.reason)
            self._lrs_down_since = time.monotonic()
            self._lrs_delay = FIRST_BACKOFF
        else:
            self._lrs_delay = min(LONGEST_BACKOFF, self._lrs_delay * 2)
        asyncio.get_running_loop().create_task(self._record_error(result.reason))
        delay = self._lrs_delay if result.retry_after is None else result.retry_after
        return delay * random.uniform(0.8, 1.2)  # several processes do not retry in step

    def _lrs_recovered(self) -> None:
        if self._lrs_down_since is not None:
            down = time.monotonic() - self._lrs_down_since
            log.info("xAPI: the LRS takes statements again, after %.1f s", down)
            self._lrs_down_since = None

    async def _record_error(self, reason: str) -> None:
        try:
            async with self.engine.begin() as conn:
                await xapi_state.record_error(conn, CURSOR, reason, utcnow())
        except Exception as exc:  # the store may be down too: the log line said it all
            if unavailable_reason(exc) is None:
                log.exception("xAPI: could not record the last error")

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _release(self) -> None:
        try:
            async with self.engine.begin() as conn:
                await xapi_state.release(conn, CURSOR, self.holder)
        except Exception as exc:
            if unavailable_reason(exc) is None:
                log.exception("xAPI: could not give the lease up")
