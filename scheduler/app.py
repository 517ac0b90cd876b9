"""APScheduler wiring: interval jobs (plan, reminders, rollups, housekeeping), dispatcher, xAPI
forwarder.

Schedule state lives in our tables, never in APScheduler's job store, so every `learnbot
serve` process runs the same jobs: planning is idempotent (the outbox's unique key), and
dispatchers share the outbox through leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.lessons.loader import teaching_by_course
from bot.store import rollups
from bot.store.availability import StoreOutage, unavailable_reason
from bot.store.db import utcnow
from bot.store.inbound import prune_processed
from scheduler.dispatcher import Dispatcher
from scheduler.plan_job import plan_once
from scheduler.xapi_forwarder import XapiForwarder

log = logging.getLogger(__name__)
T = TypeVar("T")

PLAN_EVERY = timedelta(minutes=1)
REMINDERS_EVERY = timedelta(minutes=5)
HOUSEKEEPING_EVERY = timedelta(hours=1)
# The console folds before it reads; folding often keeps what it has left to fold small.
ROLLUPS_EVERY = timedelta(seconds=15)
KEEP_INBOUND = timedelta(days=7)  # providers retry for hours, not weeks


class SchedulerApp:
    """The plan, reminders, rollups and housekeeping jobs, and the dispatcher loops."""

    def __init__(
        self,
        engine: AsyncEngine,
        courses: Mapping[str, Any],
        dispatcher: Dispatcher,
        *,
        misfire_grace: timedelta,
        plan_every: timedelta = PLAN_EVERY,
        reminders_every: timedelta = REMINDERS_EVERY,
        housekeeping_every: timedelta = HOUSEKEEPING_EVERY,
        rollups_every: timedelta = ROLLUPS_EVERY,
        keep_inbound: timedelta = KEEP_INBOUND,
        forwarder: XapiForwarder | None = None,
    ) -> None:
        self.engine = engine
        self.courses = courses
        self.dispatcher = dispatcher
        self.misfire_grace = misfire_grace
        self.keep_inbound = keep_inbound
        self._every = {
            "plan": plan_every,
            "reminders": reminders_every,
            "housekeeping": housekeeping_every,
            "rollups": rollups_every,
        }
        self._scheduler: AsyncIOScheduler | None = None
        # While the store refuses writes, each job skips its runs with a growing backoff
        # (capped at ten minutes) and says so once, not a traceback every run.
        self.outages = {
            name: StoreOutage(f"{name} job", first=every.total_seconds(), longest=600.0)
            for name, every in self._every.items()
        }
        self._dispatching: asyncio.Task[None] | None = None
        self.forwarder = forwarder  # None while no LRS is configured
        self._forwarding: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the interval jobs (plan at once) and the dispatcher loops."""
        scheduler = AsyncIOScheduler(timezone="UTC")
        jobs: dict[str, Callable[[], Awaitable[None]]] = {
            "plan": self.plan,
            "reminders": self.remind,
            "housekeeping": self.housekeep,
            "rollups": self.fold_rollups,
        }
        for name, job in jobs.items():
            scheduler.add_job(
                job,
                "interval",
                seconds=self._every[name].total_seconds(),
                id=name,
                max_instances=1,  # a slow pass is never overlapped by the next
                coalesce=True,
                next_run_time=utcnow() if name == "plan" else None,
            )
        scheduler.start()
        self._scheduler = scheduler
        self._dispatching = asyncio.create_task(self.dispatcher.run_forever(), name="dispatch")
        if self.forwarder is not None:
            self._forwarding = asyncio.create_task(self.forwarder.run_forever(), name="xapi")

    async def shutdown(self) -> None:
        """Stop the jobs, and let the dispatcher write back its batch in flight."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._forwarding is not None and self.forwarder is not None:
            self.forwarder.stop()
            try:
                await asyncio.wait_for(self._forwarding, timeout=30)
            except TimeoutError:
                # The LRS keeps one statement per id: a batch sent again changes nothing.
                self._forwarding.cancel()
            self._forwarding = None
        if self._dispatching is not None:
            self.dispatcher.stop()
            try:
                await asyncio.wait_for(self._dispatching, timeout=30)
            except TimeoutError:
                # The rows of an unfinished batch are released when their lease expires.
                self._dispatching.cancel()
            self._dispatching = None

    async def _guarded(self, name: str, job: Callable[[], Awaitable[T]]) -> T | None:
        """Run a job unless its backoff is running; None when it failed or was skipped."""
        outage = self.outages[name]
        if not outage.ready():
            return None
        try:
            result = await job()
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                log.exception("%s failed", name)
            else:
                outage.refused(reason)
            return None
        outage.succeeded()
        return result

    async def plan(self) -> None:
        """Plan due deliveries into the outbox, then wake the dispatcher."""
        stats = await self._guarded(
            "plan",
            lambda: plan_once(
                self.engine, self.courses, now=utcnow(), misfire_grace=self.misfire_grace
            ),
        )
        if stats is None:
            return
        if stats.inserted:
            self.dispatcher.wake()

    async def remind(self) -> None:
        """Queue reminders for unanswered questions (scheduler.reminders, when present)."""
        try:
            module = importlib.import_module("scheduler.reminders")
        except ImportError:
            return
        remind_once = getattr(module, "remind_once", None)
        if remind_once is None:
            return
        done = await self._guarded(
            "reminders",
            lambda: _called(remind_once(self.engine, self.courses, now=utcnow())),
        )
        if done:
            self.dispatcher.wake()

    async def fold_rollups(self) -> None:
        """Fold the event log's new events into the console's rollups."""
        teaching = teaching_by_course(self.courses)
        await self._guarded("rollups", lambda: rollups.fold(self.engine, utcnow(), teaching))

    async def housekeep(self) -> None:
        """Forget provider update ids older than `keep_inbound`."""

        async def prune() -> int:
            async with self.engine.begin() as conn:
                return await prune_processed(conn, utcnow() - self.keep_inbound)

        pruned = await self._guarded("housekeeping", prune)
        if pruned:
            log.info("forgot %d processed inbound ids", pruned)


async def _called(call: Awaitable[Any]) -> bool:
    await call
    return True


@contextlib.asynccontextmanager
async def running(app: SchedulerApp) -> AsyncIterator[SchedulerApp]:
    """Run the scheduler for the duration of a block (e.g. a Starlette lifespan)."""
    await app.start()
    try:
        yield app
    finally:
        await app.shutdown()
