"""`cohort push`: one lesson to every active learner of a cohort, now or at a time.

A push is a `pushes` row plus one outbox row (`deliveries`, kind lesson, priority 1, no
payload) per active learner, which the dispatcher sends at the channel rate limits. The
outbox key (enrollment, lesson, kind) means a learner who already has this lesson is
skipped. Cancelling turns the push's still-pending rows into cancelled ones.

Learners on a channel the settings do not configure get no row: nothing would ever send it
(the dispatcher runs only the channels it has), so the push names them at once and does not
wait for them. Pushing the lesson again once the channel is set up reaches them, and only
them, as the outbox key skips everyone who already has it.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.config import Settings
from bot.domain import ChannelName, DeliveryKind, DeliveryStatus, LearnerStatus
from bot.lessons.loader import LoadedCourse
from bot.lessons.models import Lesson
from bot.lessons.render import lesson_messages, render
from bot.store.db import utcnow
from bot.store.tables import Timestamp, cohorts, deliveries, enrollments, learners, pushes
from bot.trainers.cohorts import CohortError, CohortInfo, cohort_for
from bot.trainers.roles import UserRecord, check_cohort_access
from bot.trainers.text import N_, TrainerError
from scheduler.ratelimit import TELEGRAM_RATE

BATCH_SIZE = 2000
PENDING = (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value)
SENT = tuple(
    s.value
    for s in (
        DeliveryStatus.QUEUED,
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.READ,
    )
)
FAILED = tuple(
    s.value for s in (DeliveryStatus.FAILED, DeliveryStatus.DEAD, DeliveryStatus.UNDELIVERED)
)
SCHEDULED, SENDING, DONE, CANCELLED = "scheduled", "sending", "done", "cancelled"


class PushError(TrainerError, ValueError):
    """A push cannot be made or cancelled as asked; the message names the option or push."""


@dataclass(frozen=True, slots=True)
class LessonCost:
    """What one learner's copy of a lesson costs against each channel's rate limit."""

    messages: dict[str, int]  # channel -> provider messages (SMS: segments)

    def of(self, channel: str) -> int:
        """Rate-limit units for one learner on `channel` (at least 1)."""
        return max(self.messages.get(channel, 1), 1)


@dataclass(frozen=True, slots=True)
class Unreachable:
    """An active learner of the cohort on a channel that is not configured."""

    channel: str
    name: str | None
    learner_key: str  # for a pseudonym when the learner has no name


@dataclass(frozen=True, slots=True)
class PushInfo:
    """A push just started."""

    id: int
    cohort_id: int
    cohort_name: str
    lesson_id: str
    send_at: datetime
    status: str
    total: int  # outbox rows created for this push
    skipped: int  # active learners who already had this lesson
    by_channel: dict[str, int] = field(default_factory=dict)
    unreachable: list[Unreachable] = field(default_factory=list)  # not queued

    def unreachable_by_channel(self) -> dict[str, list[Unreachable]]:
        """The learners not queued, by channel, in the order of the cohort's enrolment."""
        found: dict[str, list[Unreachable]] = {}
        for learner in self.unreachable:
            found.setdefault(learner.channel, []).append(learner)
        return found


@dataclass(frozen=True, slots=True)
class PushProgress:
    """Where a push stands, counted from its outbox rows."""

    id: int
    cohort_id: int
    lesson_id: str
    send_at: datetime
    status: str
    total: int
    sent: int
    failed: int
    pending: int
    cancelled: int
    pending_by_channel: dict[str, int]
    held: int = 0  # WhatsApp lessons waiting for the learner's reply to the template
    due: int = 0  # pending and due now: what the dispatcher should be sending

    @property
    def finished(self) -> bool:
        """Nothing of this push is left to send."""
        return self.status in (DONE, CANCELLED) or self.pending == 0


def rate_of(channel: str, settings: Settings) -> float | None:
    """Provider messages per second a channel allows (None: unlimited, e.g. sandbox)."""
    if channel == ChannelName.SMS:
        return settings.twilio_sms_mps
    if channel == ChannelName.WHATSAPP:
        return settings.twilio_whatsapp_mps
    if channel == ChannelName.TELEGRAM:
        return TELEGRAM_RATE
    return None


def estimate_seconds(
    pending_by_channel: Mapping[str, int], cost: LessonCost, settings: Settings
) -> float:
    """Seconds to send what is pending: channels run in parallel, each at its own limit."""
    longest = 0.0
    for channel, count in pending_by_channel.items():
        rate = rate_of(channel, settings)
        if rate is not None and count > 0:
            longest = max(longest, count * cost.of(channel) / rate)
    return longest


def find_lesson(cohort: CohortInfo, lesson_id: str, courses: Mapping[str, LoadedCourse]) -> Lesson:
    """The lesson of the cohort's pathway with this id; PushError naming LESSON otherwise."""
    for course_id in cohort.course_ids:
        loaded = courses.get(course_id)
        if loaded is not None and lesson_id in loaded.lessons:
            return loaded.lessons[lesson_id]
    raise PushError(
        N_("LESSON: no course of cohort %(cohort)s (%(courses)s) has a lesson %(lesson)s"),
        cohort=repr(cohort.name),
        courses=", ".join(cohort.course_ids),
        lesson=repr(lesson_id),
    )


def lesson_cost(lesson: Lesson, settings: Settings) -> LessonCost:
    """Messages (SMS: segments) of the lesson and its first question, in its source text."""
    ui = gettext.NullTranslations()
    messages: dict[str, int] = {}
    for channel in (ChannelName.SMS, ChannelName.WHATSAPP, ChannelName.TELEGRAM):
        parts = [
            rendered
            for message in lesson_messages(
                lesson, channel=channel, address="+10000000000", locale="en", ui=ui
            )
            for rendered in render(
                message,
                sms_max_segments=settings.sms_max_segments,
                sms_fold=settings.sms_fold,
            )
        ]
        messages[channel.value] = sum(
            part.segments if channel is ChannelName.SMS else 1 for part in parts
        )
    return LessonCost(messages)


def parse_send_at(value: str, time_zone: str) -> datetime:
    """'2026-12-01 09:00' in the cohort's zone as an aware UTC datetime; PushError for --at."""
    try:
        local = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise PushError(
            N_("--at: expected %(form)s, got %(value)s"),
            form="'YYYY-MM-DD HH:MM'",
            value=repr(value),
        ) from None
    return local.replace(tzinfo=ZoneInfo(time_zone)).astimezone(ZoneInfo("UTC"))


def _insert(conn: AsyncConnection) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert


def _eligible(cohort_id: int, channels: Collection[str] | None = None) -> Any:
    condition = and_(
        enrollments.c.cohort_id == cohort_id,
        enrollments.c.status == "active",
        learners.c.status == LearnerStatus.ACTIVE.value,
        learners.c.address.is_not(None),
    )
    if channels is not None:
        condition = and_(condition, learners.c.channel.in_(sorted(channels)))
    return condition


_JOINED = enrollments.join(learners, learners.c.id == enrollments.c.learner_id)


def _has_lesson(lesson_id: str) -> Any:
    """The enrollment has this lesson in the outbox already (sent or not; not cancelled)."""
    return (
        select(deliveries.c.id)
        .where(
            deliveries.c.enrollment_id == enrollments.c.id,
            deliveries.c.lesson_id == lesson_id,
            deliveries.c.kind == DeliveryKind.LESSON.value,
            deliveries.c.status != DeliveryStatus.CANCELLED.value,
        )
        .exists()
    )


async def start_push(
    engine: AsyncEngine,
    *,
    user: UserRecord,
    cohort_id_or_code: str,
    lesson_id: str,
    send_at: datetime | None = None,
    courses: Mapping[str, LoadedCourse] | None = None,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
    on_created: Callable[[int], None] | None = None,
    channels: Collection[str] | None = None,
) -> PushInfo:
    """Create a push and its outbox rows (in batches); `send_at` None or past means now.

    With `courses`, the lesson must belong to the cohort's pathway. With `channels` (those
    configured), learners on any other channel are left out and listed in `unreachable`.
    RoleError if `user` may not act on the cohort; PushError/CohortError for a paused cohort
    or a bad lesson or time.
    """
    now = utcnow()
    due = now if send_at is None or send_at < now else send_at
    async with engine.begin() as conn:
        cohort = await cohort_for(conn, user, cohort_id_or_code)
        if cohort.status != "active":
            raise CohortError(
                N_("cohort %(cohort)s is paused: resume it before pushing"),
                cohort=repr(cohort.name),
            )
        if courses is not None:
            find_lesson(cohort, lesson_id, courses)
        result = await conn.execute(
            pushes.insert().returning(pushes.c.id),
            {
                "cohort_id": cohort.id,
                "lesson_id": lesson_id,
                "requested_by": user.id,
                "send_at": due,
                "status": SCHEDULED if due > now else SENDING,
                "total": 0,
                "created_at": now,
            },
        )
        push_id = int(result.scalar_one())
    if on_created is not None:
        on_created(push_id)  # from here on, an interrupted caller can cancel the push
    async with engine.connect() as conn:
        ids = [
            int(i)
            for (i,) in await conn.execute(
                select(enrollments.c.id)
                .select_from(_JOINED)
                .where(_eligible(cohort.id, channels))
                .order_by(enrollments.c.id)
            )
        ]
        unreachable = (
            []
            if channels is None
            else [
                Unreachable(str(row.channel), row.name, str(row.learner_key))
                for row in await conn.execute(
                    select(learners.c.channel, learners.c.name, learners.c.learner_key)
                    .select_from(_JOINED)
                    .where(
                        _eligible(cohort.id),
                        learners.c.channel.not_in(sorted(channels)),
                        ~_has_lesson(lesson_id),  # who already has it needs nothing more
                    )
                    .order_by(enrollments.c.id)
                )
            ]
        )
    total = 0
    # Short transactions: the dispatcher starts on the first rows while the rest are written.
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        async with engine.begin() as conn:
            status = await conn.scalar(select(pushes.c.status).where(pushes.c.id == push_id))
            if status == CANCELLED:
                break
            total += await _insert_chunk(conn, push_id, cohort.id, lesson_id, due, chunk, channels)
        if on_batch is not None:
            on_batch(len(chunk))
    async with engine.begin() as conn:
        values: dict[str, Any] = {"total": total}
        if total == 0:
            values["status"] = DONE
        await conn.execute(
            pushes.update()
            .where(pushes.c.id == push_id, pushes.c.status != CANCELLED)
            .values(**values)
        )
        final = await conn.scalar(select(pushes.c.status).where(pushes.c.id == push_id))
        by_channel = {
            str(channel): int(n)
            for channel, n in await conn.execute(
                select(deliveries.c.channel, func.count())
                .where(deliveries.c.push_id == push_id)
                .group_by(deliveries.c.channel)
            )
        }
    return PushInfo(
        id=push_id,
        cohort_id=cohort.id,
        cohort_name=cohort.name,
        lesson_id=lesson_id,
        send_at=due,
        status=str(final),
        total=total,
        skipped=len(ids) - total,
        by_channel=by_channel,
        unreachable=unreachable,
    )


async def _insert_chunk(
    conn: AsyncConnection,
    push_id: int,
    cohort_id: int,
    lesson_id: str,
    due: datetime,
    chunk: list[int],
    channels: Collection[str] | None,
) -> int:
    now = utcnow()
    in_chunk = and_(_eligible(cohort_id, channels), enrollments.c.id.between(chunk[0], chunk[-1]))
    # A copy cancelled by an earlier push was never sent: this push sends it after all.
    # (Without this the outbox key would make a cancelled lesson unsendable for good.)
    revived = await conn.execute(
        deliveries.update()
        .where(
            deliveries.c.enrollment_id.in_(
                select(enrollments.c.id).select_from(_JOINED).where(in_chunk)
            ),
            deliveries.c.lesson_id == lesson_id,
            deliveries.c.kind == DeliveryKind.LESSON.value,
            deliveries.c.status == DeliveryStatus.CANCELLED.value,
        )
        .values(
            status=DeliveryStatus.PENDING.value,
            push_id=push_id,
            priority=1,
            due_at=due,
            attempts=0,
            next_attempt_at=None,
            claimed_by=None,
            claimed_until=None,
            updated_at=now,
        )
    )
    source = (
        select(
            learners.c.id,
            enrollments.c.id,
            literal(lesson_id),
            literal(DeliveryKind.LESSON.value),
            learners.c.channel,
            literal(DeliveryStatus.PENDING.value),
            literal(1, Integer),
            literal(push_id, Integer),
            literal(due, Timestamp),
            literal(0, Integer),
            literal(now, Timestamp),
            literal(now, Timestamp),
        )
        .select_from(_JOINED)
        .where(in_chunk)
    )
    # SQLite needs the WHERE above: without it "ON CONFLICT" would parse as a join's ON.
    insert = (
        _insert(conn)(deliveries)
        .from_select(
            [
                "learner_id",
                "enrollment_id",
                "lesson_id",
                "kind",
                "channel",
                "status",
                "priority",
                "push_id",
                "due_at",
                "attempts",
                "created_at",
                "updated_at",
            ],
            source,
        )
        .on_conflict_do_nothing(index_elements=["enrollment_id", "lesson_id", "kind"])
    )
    inserted = await conn.execute(insert)
    return max(inserted.rowcount, 0) + max(revived.rowcount, 0)


async def push_progress(engine: AsyncEngine, push_id: int) -> PushProgress:
    """Count the push's outbox rows by state; mark the push done once nothing is pending."""
    async with engine.begin() as conn:
        push = (await conn.execute(select(pushes).where(pushes.c.id == push_id))).first()
        if push is None:
            raise PushError(N_("PUSH_ID: no push has the id %(push)s"), push=str(push_id))
        now = utcnow()
        # "due": waiting only for the dispatcher (not for a later time or a retry's backoff).
        is_due = and_(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.due_at <= now,
            (deliveries.c.next_attempt_at.is_(None)) | (deliveries.c.next_attempt_at <= now),
        )
        counts = await conn.execute(
            select(
                deliveries.c.status,
                deliveries.c.channel,
                func.count(),
                func.sum(case((is_due, 1), else_=0)),
            )
            .where(deliveries.c.push_id == push_id)
            .group_by(deliveries.c.status, deliveries.c.channel)
        )
        by_status: dict[str, int] = {}
        pending_by_channel: dict[str, int] = {}
        due = 0
        for status, channel, n, n_due in counts:
            by_status[status] = by_status.get(status, 0) + int(n)
            due += int(n_due or 0)
            if status in PENDING:
                pending_by_channel[channel] = pending_by_channel.get(channel, 0) + int(n)
        pending = sum(pending_by_channel.values())
        status = str(push.status)
        counted = sum(by_status.values())
        # total is written when every batch is in: only then can "nothing pending" mean done.
        if (
            status in (SCHEDULED, SENDING)
            and push.total > 0
            and counted >= push.total
            and not pending
        ):
            await conn.execute(pushes.update().where(pushes.c.id == push_id).values(status=DONE))
            status = DONE
    return PushProgress(
        id=push_id,
        cohort_id=int(push.cohort_id),
        lesson_id=push.lesson_id,
        send_at=push.send_at,
        status=status,
        total=max(int(push.total), counted),
        sent=sum(by_status.get(s, 0) for s in SENT),
        failed=sum(by_status.get(s, 0) for s in FAILED),
        pending=pending,
        cancelled=by_status.get(DeliveryStatus.CANCELLED.value, 0),
        pending_by_channel=pending_by_channel,
        held=by_status.get(DeliveryStatus.HELD.value, 0),
        due=due,
    )


async def push_cohort(conn: AsyncConnection, user: UserRecord, push_id: int) -> int:
    """The cohort of a push `user` may act on; PushError if none, RoleError if not theirs."""
    row = (
        await conn.execute(
            select(pushes.c.cohort_id, cohorts.c.name, cohorts.c.owner_id)
            .select_from(pushes.join(cohorts, cohorts.c.id == pushes.c.cohort_id))
            .where(pushes.c.id == push_id)
        )
    ).first()
    if row is None:
        raise PushError(N_("PUSH_ID: no push has the id %(push)s"), push=str(push_id))
    check_cohort_access(user, cohort_name=row.name, owner_id=row.owner_id)
    return int(row.cohort_id)


async def cancel_push(engine: AsyncEngine, *, user: UserRecord, push_id: int) -> PushProgress:
    """Cancel a push: its pending outbox rows become cancelled, the push status cancelled.

    Rows a dispatcher has already claimed or sent are left as they are. RoleError if `user`
    may not act on the push's cohort; PushError if there is no such push.
    """
    now = utcnow()
    async with engine.begin() as conn:
        await push_cohort(conn, user, push_id)  # it exists, and the user may act on it
        await conn.execute(
            pushes.update()
            .where(pushes.c.id == push_id, pushes.c.status != DONE)
            .values(status=CANCELLED, cancelled_at=now)
        )
        await conn.execute(
            deliveries.update()
            .where(
                deliveries.c.push_id == push_id,
                deliveries.c.status == DeliveryStatus.PENDING.value,
                # A row under a live lease is being sent right now: let it finish.
                (deliveries.c.claimed_until.is_(None)) | (deliveries.c.claimed_until < now),
            )
            .values(status=DeliveryStatus.CANCELLED.value, updated_at=now)
        )
    return await push_progress(engine, push_id)


def until(moment: datetime) -> timedelta:
    """How long from now until `moment` (zero if it has passed)."""
    return max(moment - utcnow(), timedelta(0))
