"""The outbox dispatcher: claim due deliveries, render, rate-limit, send, write results back.

One loop per channel, so a slow channel (SMS at 1 segment/s) never holds up the others;
each loop claims about two seconds of its channel's sending at a time (never more than it
can send in half a lease), replies first. Sends within a batch run concurrently, one
learner's messages in order. Each send's outcome, with the enrollment move and
`lesson_delivered` event of a lesson sent, is written as it happens, in small groups (one
transaction, one statement per kind of write), while the rest of the batch is being sent:
at most `MAX_CONCURRENT_SENDS` deliveries of a channel are ever sent or being sent without
their outcome committed, so a process killed at any moment sends at most that many again.
A batch's lease is renewed while it is in hand, however slow its channel. A delivery of
several provider messages records how many went out, so a retry resumes at the one that
failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import count
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.channels.base import Channel, SendError, SendErrorKind
from bot.channels.configured import needed_settings
from bot.dialogue.context import as_async
from bot.dialogue.outbound import LessonTarget, PreparedLesson
from bot.dialogue.runner import AsyncRunner, Runner
from bot.domain import (
    ChannelName,
    DeliveryKind,
    DeliveryStatus,
    LearnerStatus,
    OutboundMessage,
    RenderedMessage,
    SendResult,
)
from bot.lessons.render import render
from bot.lessons.sms import DEFAULT_SMS_FOLD
from bot.store.availability import StoreOutage, unavailable_reason
from bot.store.db import utcnow
from bot.store.deliveries import apply_failure, decode_messages
from bot.store.delivery_status import template_awaits_reply
from bot.store.events import EventRow
from bot.store.unclaimed import pending_outside
from scheduler import outbox
from scheduler.outbox import ClaimedRow, EnrollmentMoves, SentRows, SettledRows

log = logging.getLogger(__name__)

WHATSAPP_WINDOW = timedelta(hours=24)
TEMPLATE_WAITING = "held: a template already waits for the learner's reply"
_LEARNER_GONE = frozenset({SendErrorKind.OPTED_OUT, SendErrorKind.UNREACHABLE})
BATCH_SECONDS = 2.0  # a claim holds about this much of a channel's sending
UNLIMITED_BATCH = 1000
# Deliveries of one channel sent or being sent whose outcome is not committed yet: what a
# kill -9 can make go twice. Far more than a provider's rate times its latency needs
# (Telegram 30/s x ~0.1 s, Twilio 100 MPS x ~0.2 s).
MAX_CONCURRENT_SENDS = 32
UNCONFIGURED_CHECK_SECONDS = 60.0  # how often to look for rows on channels not configured


class Limiter(Protocol):
    """What the dispatcher needs of a channel's rate limiter (scheduler.ratelimit)."""

    async def acquire(self, address: str, cost: float = 1.0) -> None:
        """Wait for a send slot of `cost` units to `address`."""
        ...

    def pause(self, seconds: float) -> None:
        """Nobody sends on this channel for `seconds` (a provider's retry-after)."""
        ...


class LessonSource(Protocol):
    """What the dispatcher needs of the dialogue: scheduled lessons and WhatsApp templates."""

    def prepare_lesson(self, target: LessonTarget, now: datetime) -> PreparedLesson | None:
        """The lesson's messages and the writes that follow its sending."""
        ...

    def prepare_reminder(
        self, target: LessonTarget, question_index: int | None
    ) -> PreparedLesson | None:
        """A reminder of the open question; None once it is answered."""
        ...

    def whatsapp_template(
        self, target: LessonTarget, prepared: PreparedLesson
    ) -> RenderedMessage | None:
        """The approved template announcing the lesson, if one is configured."""
        ...


class _Unlimited:
    async def acquire(self, address: str, cost: float = 1.0) -> None:
        return None

    def pause(self, seconds: float) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter; retry-after wins when a provider gives one."""

    max_attempts: int = 5
    base: float = 10.0  # seconds before the first retry
    cap: float = 3600.0

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        if retry_after is not None and retry_after > 0:
            # Wait as long as the provider says, plus a little so retries do not arrive at once.
            return retry_after * (1 + 0.1 * rng.random())
        backoff = min(self.cap, self.base * 2.0 ** (attempts - 1))
        return backoff * (0.5 + rng.random())  # "equal jitter" around the backoff


@dataclass(slots=True)
class BatchResult:
    """What one batch did, for logs, tests and the benchmark."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    failed: int = 0
    held: int = 0
    cancelled: int = 0
    messages: int = 0  # provider messages (SMS parts) sent
    statements: int = 0  # store writes (statements) for the batch


@dataclass(slots=True)
class _Outcome:
    row: ClaimedRow
    status: DeliveryStatus
    results: list[SendResult] = field(default_factory=list)
    prepared: PreparedLesson | None = None
    locale: str | None = None
    error: SendError | None = None
    template: RenderedMessage | None = None
    template_result: SendResult | None = None

    @property
    def parts_sent(self) -> int:
        """Provider messages of the delivery sent so far, by every attempt."""
        return self.row.parts_sent + len(self.results)

    @property
    def segments_sent(self) -> int:
        """Their SMS segments."""
        return self.row.segments_sent + sum(result.segments for result in self.results)


class _LeaseKeeper:
    """Renews a claimed batch's lease every third of it until the batch is written back."""

    def __init__(self, dispatcher: Dispatcher, token: str) -> None:
        self._dispatcher = dispatcher
        self._token = token
        self._stopped = asyncio.Event()
        self._task = asyncio.create_task(self._renew_periodically())

    async def _renew_periodically(self) -> None:
        dispatcher = self._dispatcher
        interval = dispatcher.lease.total_seconds() / 3
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), interval)
                return
            try:
                await dispatcher.runner.run(
                    lambda db: outbox.renew_lease(
                        as_async(db), self._token, dispatcher.clock() + dispatcher.lease
                    )
                )
            except Exception as exc:
                # Keep trying: a lease that runs out only risks a second send, never a loss.
                # A store refusing writes is said once by the loop's outage, not every time.
                if unavailable_reason(exc) is None:
                    log.exception("renewing the lease of batch %s failed", self._token)

    async def stop(self) -> None:
        """Stop renewing (after any renewal under way, so it never races the write-back)."""
        self._stopped.set()
        await self._task


class _Recorder:
    """Writes a batch's outcomes as they come, a group per transaction, while it is sent.

    Each send holds one of its channel's `slots` from before it starts until its outcome is
    committed: a kill can only catch that many sent and not recorded.
    """

    def __init__(self, dispatcher: Dispatcher, slots: asyncio.Semaphore) -> None:
        self._dispatcher = dispatcher
        self._slots = slots
        self._queue: list[tuple[_Outcome, bool]] = []
        self._ready = asyncio.Event()
        self._closed = False
        self.result = BatchResult()
        self.error: Exception | None = None
        self._task = asyncio.create_task(self._run())

    def add(self, outcome: _Outcome, *, holds_slot: bool) -> None:
        """Queue `outcome` for the next write (`holds_slot`: release a slot once written)."""
        self._queue.append((outcome, holds_slot))
        self._ready.set()

    async def _run(self) -> None:
        # On PostgreSQL the batch's groups share one connection: a pool checkout (with its
        # pre-ping round trip) per group cost about as much as the group's writes.
        conn: AsyncConnection | None = None
        try:
            while True:
                if not self._queue:
                    if self._closed:
                        return
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                # Everything that finished while the last group was written: the group grows
                # with the send rate, never beyond the slots (plus rows settled without a send).
                group, self._queue = self._queue, []
                try:
                    conn = await self._write_group(group, conn)
                finally:
                    for _, held in group:
                        if held:
                            self._slots.release()
        finally:
            if conn is not None:
                await _close_quietly(conn)

    async def _write_group(
        self, group: list[tuple[_Outcome, bool]], conn: AsyncConnection | None
    ) -> AsyncConnection | None:
        """Write one group; while the store refuses writes, try again with backoff.

        What went out to learners must be recorded, or its rows would go out again once
        their lease runs out; the group keeps its send slots meanwhile, so the batch stops
        sending until the store takes writes again. The connection to use next is returned.
        """
        runner = self._dispatcher.runner
        outage: StoreOutage | None = None
        while True:
            try:
                if conn is None and isinstance(runner, AsyncRunner):
                    conn = await runner.engine.connect()
                written = await self._dispatcher._write([o for o, _ in group], conn)
            except Exception as exc:
                if conn is not None:
                    await _close_quietly(conn)
                    conn = None
                reason = unavailable_reason(exc)
                if reason is None:
                    # These rows stay `sending` and go back to the outbox when the lease ends:
                    # sent twice at worst, never lost. The batch stops sending (`failed`).
                    log.exception("writing back %d deliveries failed", len(group))
                    self.error = self.error or exc
                    return None
                if outage is None:
                    outage = StoreOutage(f"dispatcher write-back of {len(group)} deliveries")
                await asyncio.sleep(outage.refused(reason))
                continue
            if outage is not None:
                outage.succeeded()
            _add_result(self.result, written)
            return conn

    @property
    def failed(self) -> bool:
        """A write failed: send no more of this batch."""
        return self.error is not None

    async def close(self) -> BatchResult:
        """Wait for every queued outcome to be written: what they did (or the write's error)."""
        self._closed = True
        self._ready.set()
        await self._task
        if self.error is not None:
            raise self.error
        return self.result


@dataclass(slots=True)
class _Batch:
    """A claimed batch under a lease kept alive until its last outcome is written."""

    rows: list[ClaimedRow]
    lease: _LeaseKeeper
    recorder: _Recorder

    async def abandon(self) -> None:
        """Stop renewing; write what was sent (rows not sent go back when the lease ends)."""
        try:
            with contextlib.suppress(Exception):
                await self.recorder.close()
        finally:
            await self.lease.stop()


async def _close_quietly(conn: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


def _add_result(total: BatchResult, result: BatchResult) -> None:
    for name in BatchResult.__slots__:
        setattr(total, name, getattr(total, name) + getattr(result, name))


def worker_id() -> str:
    """A name for this process's leases: host, pid and a random part (at most 40 chars)."""
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{secrets.token_hex(4)}"


class Dispatcher:
    """Sends the outbox through the channels; several may run on one PostgreSQL database."""

    def __init__(
        self,
        engine: AsyncEngine,
        channels: Mapping[ChannelName, Channel],
        lessons: LessonSource,
        *,
        limiters: Mapping[ChannelName, Limiter] | None = None,
        sms_max_segments: int = 3,
        sms_fold: Collection[str] = DEFAULT_SMS_FOLD,
        retry: RetryPolicy | None = None,
        lease: timedelta = timedelta(seconds=60),
        batch_size: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        name: str | None = None,
        runner: Runner | None = None,
    ) -> None:
        self.engine = engine
        # Where claims and write-backs run: serve passes the dialogue's runner, so on a SQLite
        # file they run inline on its sync connection like the turns, holding the write lock
        # for microseconds instead of across aiosqlite's thread hops (which made turns wait).
        self.runner: Runner = runner or AsyncRunner(engine)
        self.channels = dict(channels)
        self.lessons = lessons
        self.limiters: dict[ChannelName, Limiter] = dict(limiters or {})
        self.sms_max_segments = sms_max_segments
        self.sms_fold = sms_fold  # locales whose SMS text is folded to GSM-7
        self.retry = retry or RetryPolicy()
        self.lease = lease
        self.batch_size = batch_size
        self.clock = clock
        self.rng = rng or random.Random()
        self.name = name or worker_id()
        self._batches = count(1)
        self._wakeups: dict[ChannelName, asyncio.Event] = {}
        self._slots: dict[ChannelName, asyncio.Semaphore] = {}
        self._stopping = False
        self._unconfigured_reported: dict[str, int] = {}

    # --- running -------------------------------------------------------------------------

    def wake(self) -> None:
        """New work is in the outbox (a turn enqueued replies): every channel loop looks now."""
        for event in self._wakeups.values():
            event.set()

    async def run_forever(self, idle_seconds: float = 1.0) -> None:
        """One loop per channel until `stop`; each sleeps `idle_seconds` or until woken."""
        self._stopping = False
        loops = [self._loop(channel, idle_seconds) for channel in self.channels]
        await asyncio.gather(*loops, self._watch_unconfigured())

    def stop(self) -> None:
        """Let the loops finish their batch and return."""
        self._stopping = True
        self.wake()

    async def _loop(self, channel: ChannelName, idle_seconds: float) -> None:
        event = self._wakeups.setdefault(channel, asyncio.Event())
        release_every = max(1.0, self.lease.total_seconds() / 4)
        released_at = 0.0
        loop = asyncio.get_running_loop()
        sent: _Batch | None = None  # sent, not yet written back
        outage = StoreOutage(f"dispatcher ({channel})")
        while not self._stopping:
            wait = idle_seconds
            try:
                if loop.time() - released_at >= release_every:
                    released_at = loop.time()
                    await self.release_expired()
                sent, _ = await self._step(channel, sent)
                outage.succeeded()
            except Exception as exc:
                sent = None  # _step wrote it back (or it stays leased, then released)
                reason = unavailable_reason(exc)
                if reason is None:
                    # A database hiccup must not end the loop: log, wait, try again.
                    log.exception("dispatch of %s failed", channel)
                else:
                    # Disk full, read-only, down: one warning, then longer and longer waits.
                    wait = outage.refused(reason)
            if sent is not None:
                continue
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), wait)
        if sent is not None:
            try:
                await self._finish(sent)
            except Exception:
                log.exception("writing back the last batch of %s failed", channel)

    # --- channels this process does not send on (issue 8, "a push never waits in silence") ---

    async def report_unconfigured(self) -> dict[str, int]:
        """Log once per channel that deliveries wait on a channel nobody here sends on.

        Such rows stay pending (they go once the channel is configured and serve restarts);
        the warning comes again only after the channel's backlog has cleared and returned.
        """
        counts = await self.runner.run(
            lambda db: pending_outside(as_async(db), [str(c) for c in self.channels])
        )
        for channel, n in sorted(counts.items()):
            if not self._unconfigured_reported.get(channel):
                log.warning(
                    "%d %s pending for %s, which is not configured: they wait until "
                    "it is (set %s and restart); see `learnbot outbox pending`",
                    n,
                    "delivery" if n == 1 else "deliveries",
                    channel,
                    needed_settings(channel) or "its settings",
                )
        self._unconfigured_reported = counts
        return counts

    async def _watch_unconfigured(self) -> None:
        loop = asyncio.get_running_loop()
        checked_at: float | None = None
        while not self._stopping:
            if checked_at is None or loop.time() - checked_at >= UNCONFIGURED_CHECK_SECONDS:
                checked_at = loop.time()
                try:
                    await self.report_unconfigured()
                except Exception as exc:  # the channel loops report store trouble already
                    log.debug("counting deliveries on unconfigured channels failed: %s", exc)
            await asyncio.sleep(0.5)

    # --- end of the unconfigured-channel block ---

    async def release_expired(self) -> int:
        """Make rows of dead processes (lease expired) pending again: the count."""
        now = self.clock()
        released = await self.runner.run(lambda db: outbox.release_expired(as_async(db), now))
        if released:
            log.warning("released %d deliveries whose lease expired", released)
        return released

    async def run_until_idle(self) -> BatchResult:
        """Dispatch every channel until nothing is due (tests, benchmarks): the totals."""
        total = BatchResult()
        sent: dict[ChannelName, _Batch | None] = {}
        busy = True
        while busy:
            busy = False
            for channel in self.channels:
                sent[channel], result = await self._step(channel, sent.get(channel))
                busy = busy or sent[channel] is not None
                _add_result(total, result)
        return total

    # --- one batch -----------------------------------------------------------------------

    def limiter(self, channel: ChannelName) -> Limiter:
        """The channel's limiter (unlimited when none was given)."""
        found = self.limiters.get(channel)
        if found is None:
            found = self.limiters[channel] = _Unlimited()
        return found

    def batch_limit(self, channel: ChannelName) -> int:
        """How many rows one claim takes: about `BATCH_SECONDS` of the channel's rate.

        Never more than the channel sends in half a lease, so a claimed row waits for its
        send less than the lease, renewed or not.
        """
        rate = getattr(self.limiter(channel), "rate", None)
        if not isinstance(rate, int | float):
            return self.batch_size or UNLIMITED_BATCH
        within_lease = int(rate * self.lease.total_seconds() / 2)
        wanted = self.batch_size or int(rate * BATCH_SECONDS)
        return max(1, min(UNLIMITED_BATCH, wanted, within_lease))

    def slots(self, channel: ChannelName) -> asyncio.Semaphore:
        """The channel's sends not yet recorded (`MAX_CONCURRENT_SENDS`), across its batches."""
        found = self._slots.get(channel)
        if found is None:
            found = self._slots[channel] = asyncio.Semaphore(MAX_CONCURRENT_SENDS)
        return found

    async def dispatch_once(self, channel: ChannelName) -> BatchResult:
        """Claim one batch of `channel`, send it, write the results: what happened."""
        batch = await self._claim(channel)
        if batch is None:
            return BatchResult()
        try:
            await self._send(batch)
        except BaseException:
            await batch.abandon()
            raise
        return await self._finish(batch)

    async def _step(
        self, channel: ChannelName, sent: _Batch | None
    ) -> tuple[_Batch | None, BatchResult]:
        """Claim the next batch, then write `sent` back while sending it.

        The write and the sends overlap (the database works while Python renders and sends);
        the claim comes first, so on SQLite it never waits for the write's lock. Returns the
        batch now sent (None: nothing was due) and what `sent`'s write-back counted.
        """
        try:
            batch = await self._claim(channel)
        except Exception:
            if sent is not None:
                await self._finish(sent)  # what was sent is recorded even so
            raise
        except BaseException:
            if sent is not None:
                await sent.abandon()
            raise
        writing = asyncio.create_task(self._finish(sent)) if sent is not None else None
        try:
            if batch is not None:
                await self._send(batch)
        except BaseException:
            if batch is not None:
                await batch.abandon()
            raise
        finally:
            result = await writing if writing is not None else BatchResult()
        return batch, result

    async def _claim(self, channel: ChannelName) -> _Batch | None:
        now = self.clock()
        token = f"{self.name}:{next(self._batches)}"
        limit = self.batch_limit(channel)
        chat_rate = getattr(self.limiter(channel), "per_address_rate", None)
        chat_interval = timedelta(seconds=1 / chat_rate) if chat_rate else None
        rows = await self.runner.run(
            lambda db: outbox.claim_batch(
                as_async(db),
                channel=channel,
                token=token,
                limit=limit,
                now=now,
                lease_until=now + self.lease,
                chat_interval=chat_interval,
            )
        )
        if not rows:
            return None
        return _Batch(rows, _LeaseKeeper(self, token), _Recorder(self, self.slots(channel)))

    async def _send(self, batch: _Batch) -> None:
        by_learner: dict[int, list[ClaimedRow]] = defaultdict(list)
        for row in batch.rows:
            by_learner[row.learner_id].append(row)
        # Each learner's messages in order, learners in parallel: workers take learners one
        # at a time. (A task per learner cost more than the sandbox's sends themselves; the
        # workers are far more than a channel's rate times a provider's latency needs.)
        queue = iter(list(by_learner.values()))
        recorder = batch.recorder
        slots = self.slots(batch.rows[0].channel)

        async def worker() -> None:
            for learner_rows in queue:
                if recorder.failed:
                    return  # the store refused a write: the rest waits for the lease to end
                await self._send_learner(learner_rows, recorder, slots)

        workers = min(len(by_learner), MAX_CONCURRENT_SENDS)
        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _finish(self, batch: _Batch) -> BatchResult:
        """Wait for a sent batch's last outcomes to be written; its lease is renewed until then."""
        try:
            return await batch.recorder.close()
        finally:
            await batch.lease.stop()

    async def _send_learner(
        self, rows: Sequence[ClaimedRow], recorder: _Recorder, slots: asyncio.Semaphore
    ) -> None:
        gone = False  # the provider said this learner can no longer receive anything
        announced = False  # a WhatsApp template went to this learner in this batch
        for row in rows:
            if gone:
                recorder.add(_Outcome(row, DeliveryStatus.CANCELLED), holds_slot=False)
                continue
            await slots.acquire()
            try:
                outcome = await self._send_row(row, announced=announced)
            except BaseException:
                slots.release()
                raise
            recorder.add(outcome, holds_slot=True)
            announced = announced or outcome.template_result is not None
            error = outcome.error
            gone = error is not None and error.kind in _LEARNER_GONE

    async def _send_row(self, row: ClaimedRow, *, announced: bool = False) -> _Outcome:
        now = self.clock()
        if not row.is_reply and row.learner_status != LearnerStatus.ACTIVE.value:
            # Stopped, paused, unreachable or deleted: scheduled sends are dropped, but a
            # reply (the STOP or deletion confirmation itself) still goes out.
            return _Outcome(row, DeliveryStatus.CANCELLED)
        prepared: PreparedLesson | None = None
        target: LessonTarget | None = None
        if row.payload is not None:
            messages = decode_messages(row.payload)
        elif row.kind == DeliveryKind.REMINDER.value:
            target = _reminder_target(row)
            prepared = self.lessons.prepare_reminder(target, row.question_index) if target else None
            if prepared is None:
                # Answered (or moved on) since the planner queued it: nothing to remind of.
                return _Outcome(row, DeliveryStatus.CANCELLED)
            messages = prepared.messages
        else:
            target = _target(row)
            if target is None or (prepared := self.lessons.prepare_lesson(target, now)) is None:
                error = SendError(SendErrorKind.PERMANENT, f"unknown lesson {row.lesson_id!r}")
                return _Outcome(row, DeliveryStatus.FAILED, error=error)
            messages = prepared.messages
            if row.channel == ChannelName.WHATSAPP and _window_closed(row, now):
                return await self._hold(row, target, prepared, announced=announced)
        outcome = _Outcome(row, DeliveryStatus.SENT, prepared=prepared)
        outcome.locale = prepared.locale if prepared else (messages[0].locale if messages else None)
        try:
            await self._send_messages(row.channel, messages, outcome)
        except SendError as error:
            outcome.error = error
            if error.kind == SendErrorKind.WINDOW_CLOSED and target and prepared:
                return await self._hold(
                    row, target, prepared, error, outcome.results, announced=announced
                )
            outcome.status = self._after_failure(row, error)
        except Exception as exc:  # a channel bug: retry like a transient failure, and log it
            log.exception("channel %s raised on delivery %s", row.channel, row.id)
            outcome.error = SendError(SendErrorKind.RETRYABLE, repr(exc)[:500])
            outcome.status = self._after_failure(row, outcome.error)
        return outcome

    async def _send_messages(
        self, channel_name: ChannelName, messages: Sequence[OutboundMessage], outcome: _Outcome
    ) -> None:
        """Send the parts of `messages` that earlier attempts did not, recording each."""
        channel = self.channels[channel_name]
        limiter = self.limiter(channel_name)
        skip = outcome.row.parts_sent
        for message in messages:
            for part in render(
                message, sms_max_segments=self.sms_max_segments, sms_fold=self.sms_fold
            ):
                if skip:
                    # Sent by an earlier attempt: the learner has it. (Rendering is the same
                    # each time for the same lesson, locale and settings.)
                    skip -= 1
                    continue
                await limiter.acquire(part.address, cost=part.segments)
                outcome.results.append(await channel.send(part))

    async def _hold(
        self,
        row: ClaimedRow,
        target: LessonTarget,
        prepared: PreparedLesson,
        error: SendError | None = None,
        results: list[SendResult] | None = None,
        *,
        announced: bool = False,
    ) -> _Outcome:
        """Outside the WhatsApp window: send the approved template; the lesson waits.

        `results`: the lesson's parts sent before the window closed; they are not sent again.
        `announced`: a template went to this learner earlier in the batch.
        """
        outcome = _Outcome(row, DeliveryStatus.HELD, results or [], prepared=prepared, error=error)
        if announced or await self.runner.run(
            lambda db: template_awaits_reply(as_async(db), row.learner_id, row.id)
        ):
            # One template per silence: each is a paid business-initiated message, and the
            # learner's reply releases every held lesson at once, in order.
            outcome.error = SendError(SendErrorKind.WINDOW_CLOSED, TEMPLATE_WAITING)
            return outcome
        template = self.lessons.whatsapp_template(target, prepared)
        if template is None:
            log.warning(
                "no WhatsApp template for learner %s's locale: lesson held", row.learner_key
            )
            outcome.error = SendError(
                SendErrorKind.WINDOW_CLOSED, "no WhatsApp template for the learner's locale"
            )
            return outcome
        outcome.template = template
        try:
            await self.limiter(row.channel).acquire(template.address)
            outcome.template_result = await self.channels[row.channel].send(template)
        except SendError as failure:
            # The lesson is not lost: it is retried (or settled) like any failed send.
            outcome.error = failure
            outcome.status = self._after_failure(row, failure)
        return outcome

    def _after_failure(self, row: ClaimedRow, error: SendError) -> DeliveryStatus:
        if error.kind == SendErrorKind.RETRYABLE:
            if error.retry_after:
                self.limiter(row.channel).pause(error.retry_after)
            if row.attempts + 1 >= self.retry.max_attempts:
                return DeliveryStatus.DEAD
            return DeliveryStatus.PENDING
        return DeliveryStatus.FAILED

    # --- writing back --------------------------------------------------------------------

    async def _write(
        self, outcomes: Sequence[_Outcome], conn: AsyncConnection | None = None
    ) -> BatchResult:
        """Write `outcomes` in one transaction (on `conn` when given, else the runner's)."""
        now = self.clock()
        result = BatchResult(claimed=len(outcomes))
        sent = SentRows([], [], [], [], [], [])
        settled = SettledRows([], [], [], [], [], [], [], [])
        moves = EnrollmentMoves([], [], [], [], [], [], [])
        events: list[EventRow] = []
        templates: list[dict[str, Any]] = []
        failures: list[_Outcome] = []
        for outcome in outcomes:
            row, status = outcome.row, outcome.status
            if status == DeliveryStatus.SENT:
                result.sent += 1
                result.messages += len(outcome.results)
                _add_sent(sent, outcome)
                prepared = outcome.prepared
                if prepared is not None and row.enrollment_id is not None:
                    if prepared.enrollment_values:
                        moves.add(row.enrollment_id, prepared.enrollment_values)
                    if prepared.event is not None:
                        events.append(prepared.event)
            elif status == DeliveryStatus.FAILED:
                result.failed += 1
                result.messages += len(outcome.results)
                failures.append(outcome)
            else:
                result.messages += len(outcome.results)
                self._add_settled(settled, outcome, now)
                if status == DeliveryStatus.PENDING:
                    result.retried += 1
                elif status == DeliveryStatus.DEAD:
                    result.dead += 1
                    log.warning("delivery %s is dead after %d attempts", row.id, row.attempts + 1)
                elif status == DeliveryStatus.HELD:
                    result.held += 1
                    if outcome.template_result is not None:
                        templates.append(_template_values(outcome, now))
                else:
                    result.cancelled += 1
        if conn is not None:
            async with conn.begin():
                statements = await self._write_rows(
                    conn, sent, settled, moves, templates, events, failures, now
                )
        else:
            statements = await self.runner.run(
                lambda db: self._write_rows(
                    as_async(db), sent, settled, moves, templates, events, failures, now
                )
            )
        result.statements += statements
        return result

    async def _write_rows(
        self,
        conn: AsyncConnection,
        sent: SentRows,
        settled: SettledRows,
        moves: EnrollmentMoves,
        templates: list[dict[str, Any]],
        events: list[EventRow],
        failures: list[_Outcome],
        now: datetime,
    ) -> int:
        """One batch's writes in the caller's transaction: the number of statements."""
        statements = 0
        if sent.ids:
            await outbox.mark_sent(conn, sent, now)
            statements += 1
        if settled.ids:
            await outbox.settle(conn, settled, now)
            statements += 1
        if moves.ids:
            await outbox.update_enrollments(conn, moves)
            statements += 1
        if templates:
            await outbox.record_templates(conn, templates)
            statements += 1
        if events:
            await outbox.insert_events(conn, events)
            statements += 1
        for outcome in failures:
            await self._apply_failure(conn, outcome, now)
            statements += 1
        return statements

    def _add_settled(self, settled: SettledRows, outcome: _Outcome, now: datetime) -> None:
        row, error, status = outcome.row, outcome.error, outcome.status
        attempts = row.attempts
        next_attempt_at = None
        if status in (DeliveryStatus.PENDING, DeliveryStatus.DEAD):
            attempts += 1
        if status == DeliveryStatus.PENDING:
            retry_after = error.retry_after if error else None
            delay = self.retry.delay(attempts, retry_after, self.rng)
            next_attempt_at = now + timedelta(seconds=delay)
        settled.ids.append(row.id)
        settled.statuses.append(status.value)
        settled.attempts.append(attempts)
        settled.next_attempt_at.append(next_attempt_at)
        settled.error_codes.append(None if error is None else (error.code or str(error.kind)))
        settled.error_details.append(None if error is None else error.detail[:2000])
        # What reached the learner stays recorded: the next attempt resumes after it.
        settled.parts_sent.append(outcome.parts_sent)
        settled.segments.append(outcome.segments_sent if outcome.parts_sent else None)

    async def _apply_failure(self, conn: AsyncConnection, outcome: _Outcome, now: datetime) -> None:
        row, error = outcome.row, outcome.error
        assert error is not None
        kind = error.kind
        if kind in (SendErrorKind.WINDOW_CLOSED, SendErrorKind.RETRYABLE):
            kind = SendErrorKind.PERMANENT  # a reply outside the window is stale later: drop it
        log.warning("delivery %s failed (%s): %s", row.id, error.kind, error.detail)
        await apply_failure(
            conn,
            learner_id=row.learner_id,
            delivery_id=row.id,
            kind=kind,
            code=error.code,
            detail=error.detail,
            now=now,
        )


def _target(row: ClaimedRow) -> LessonTarget | None:
    if row.enrollment_id is None or row.course_id is None or row.address is None:
        return None
    return LessonTarget(
        delivery_id=row.id,
        enrollment_id=row.enrollment_id,
        cohort_id=row.cohort_id,
        course_id=row.course_id,
        lesson_id=row.lesson_id,
        learner_key=row.learner_key,
        learner_locale=row.learner_locale,
        channel=row.channel,
        address=row.address,
    )


def _reminder_target(row: ClaimedRow) -> LessonTarget | None:
    """A reminder is about the enrollment's open lesson, whatever its outbox key says."""
    target = _target(row)
    if target is None or row.open_lesson_id is None:
        return None
    return replace(target, lesson_id=row.open_lesson_id)


def _window_closed(row: ClaimedRow, now: datetime) -> bool:
    return row.last_inbound_at is None or now - row.last_inbound_at > WHATSAPP_WINDOW


def _add_sent(sent: SentRows, outcome: _Outcome) -> None:
    results = outcome.results
    sent.ids.append(outcome.row.id)
    # Status callbacks find the delivery by this id: the last part's, which arrives last.
    sent.provider_message_ids.append(results[-1].provider_message_id if results else None)
    sent.segments.append(outcome.segments_sent)
    sent.locales.append(outcome.locale)
    sent.attempts.append(outcome.row.attempts + 1)
    sent.parts_sent.append(outcome.parts_sent)


def _template_values(outcome: _Outcome, now: datetime) -> dict[str, Any]:
    row = outcome.row
    assert outcome.template_result is not None
    return {
        "learner_id": row.learner_id,
        "enrollment_id": row.enrollment_id,
        "lesson_id": row.lesson_id,
        "kind": DeliveryKind.TEMPLATE.value,
        "channel": str(row.channel),
        "status": DeliveryStatus.SENT.value,
        "priority": row.priority,
        "locale": outcome.prepared.locale if outcome.prepared else None,
        "due_at": now,
        "attempts": 1,
        "provider_message_id": outcome.template_result.provider_message_id,
        "segments": outcome.template_result.segments,
        "created_at": now,
        "sent_at": now,
        "updated_at": now,
    }
