"""Pushes: one outbox row per active learner, never a lesson twice, cancellable, with an ETA."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.domain import LearnerStatus
from bot.lessons.loader import LoadedCourse
from bot.store.db import utcnow
from bot.store.tables import deliveries, enrollments, pushes
from bot.trainers.cohorts import CohortError
from bot.trainers.push import (
    LessonCost,
    PushError,
    cancel_push,
    estimate_seconds,
    find_lesson,
    lesson_cost,
    parse_send_at,
    push_progress,
    start_push,
)
from bot.trainers.roles import RoleError
from tests.store.rows import insert_enrollment, insert_learner
from tests.trainers.conftest import CHANNELS_ON, LESSON, Cli, Staff, count


async def enrol(
    engine: AsyncEngine, cohort_id: int, *statuses: str, channel: str = "sms"
) -> list[int]:
    """One learner per status, enrolled in the cohort; their enrollment ids."""
    return await enrol_learners(
        engine, cohort_id, [{"status": s, "channel": channel} for s in statuses]
    )


async def enrol_learners(
    engine: AsyncEngine, cohort_id: int, learners: list[dict[str, Any]]
) -> list[int]:
    """A learner per set of `insert_learner` columns, enrolled in the cohort; enrollment ids."""
    ids = []
    async with engine.begin() as conn:
        for columns in learners:
            learner = await insert_learner(conn, **columns)
            ids.append(await insert_enrollment(conn, learner["id"], cohort_id))
    return ids


async def test_a_push_queues_one_row_per_active_learner_and_skips_the_others(
    engine: AsyncEngine, staff: Staff, courses: dict[str, LoadedCourse]
) -> None:
    cohort = staff.toms_cohort
    active = await enrol(engine, cohort.id, *["active"] * 5)
    await enrol(
        engine, cohort.id, LearnerStatus.STOPPED, LearnerStatus.UNREACHABLE, LearnerStatus.PAUSED
    )
    paused_enrollment = (await enrol(engine, cohort.id, "active"))[0]
    async with engine.begin() as conn:
        await conn.execute(
            enrollments.update()
            .where(enrollments.c.id == paused_enrollment)
            .values(status="paused")
        )
    await enrol(engine, staff.unas_cohort.id, "active")  # another cohort

    info = await start_push(
        engine,
        user=staff.tom,
        cohort_id_or_code=cohort.join_code,
        lesson_id=LESSON,
        courses=courses,
        batch_size=2,
    )
    assert (info.total, info.skipped, info.status) == (5, 0, "sending")
    assert info.by_channel == {"sms": 5}
    async with engine.connect() as conn:
        rows = (await conn.execute(select(deliveries).order_by(deliveries.c.enrollment_id))).all()
    assert [row.enrollment_id for row in rows] == active
    assert {(r.kind, r.priority, r.payload, r.push_id, r.status, r.lesson_id) for r in rows} == {
        ("lesson", 1, None, info.id, "pending", LESSON)
    }
    async with engine.connect() as conn:
        assert await conn.scalar(select(pushes.c.total).where(pushes.c.id == info.id)) == 5


async def test_a_lesson_already_sent_is_not_sent_again(engine: AsyncEngine, staff: Staff) -> None:
    await enrol(engine, staff.toms_cohort.id, "active", "active", "active")
    first = await start_push(
        engine, user=staff.tom, cohort_id_or_code=str(staff.toms_cohort.id), lesson_id=LESSON
    )
    async with engine.begin() as conn:
        await conn.execute(deliveries.update().values(status="sent"))
    again = await start_push(
        engine, user=staff.tom, cohort_id_or_code=str(staff.toms_cohort.id), lesson_id=LESSON
    )
    assert (first.total, again.total, again.skipped, again.status) == (3, 0, 3, "done")
    assert await count(engine, deliveries) == 3


async def test_cancelling_a_push_cancels_what_is_still_pending(
    engine: AsyncEngine, staff: Staff
) -> None:
    await enrol(engine, staff.toms_cohort.id, *["active"] * 4)
    info = await start_push(
        engine, user=staff.tom, cohort_id_or_code=staff.toms_cohort.join_code, lesson_id=LESSON
    )
    async with engine.begin() as conn:
        ids = [r.id for r in await conn.execute(select(deliveries.c.id).order_by(deliveries.c.id))]
        await conn.execute(
            deliveries.update().where(deliveries.c.id == ids[0]).values(status="sent")
        )
        # Claimed by a live dispatcher right now: that one is let through.
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.id == ids[1])
            .values(claimed_by="worker-1", claimed_until=utcnow() + timedelta(minutes=1))
        )

    with pytest.raises(RoleError):
        await cancel_push(engine, user=staff.una, push_id=info.id)
    progress = await cancel_push(engine, user=staff.tom, push_id=info.id)
    assert (progress.status, progress.sent, progress.pending, progress.cancelled) == (
        "cancelled",
        1,
        1,
        2,
    )
    with pytest.raises(PushError, match="no push has the id 999"):
        await cancel_push(engine, user=staff.admin, push_id=999)


async def test_a_cancelled_lesson_can_be_pushed_again(engine: AsyncEngine, staff: Staff) -> None:
    await enrol(engine, staff.toms_cohort.id, "active", "active")
    first = await start_push(
        engine, user=staff.tom, cohort_id_or_code=staff.toms_cohort.join_code, lesson_id=LESSON
    )
    await cancel_push(engine, user=staff.tom, push_id=first.id)
    second = await start_push(
        engine, user=staff.tom, cohort_id_or_code=staff.toms_cohort.join_code, lesson_id=LESSON
    )
    assert second.total == 2
    progress = await push_progress(engine, second.id)
    assert (progress.pending, progress.cancelled) == (2, 0)
    assert await count(engine, deliveries) == 2


async def test_progress_counts_sent_and_failed_and_ends_done(
    engine: AsyncEngine, staff: Staff
) -> None:
    await enrol(engine, staff.toms_cohort.id, *["active"] * 3)
    info = await start_push(
        engine, user=staff.admin, cohort_id_or_code=staff.toms_cohort.join_code, lesson_id=LESSON
    )
    async with engine.begin() as conn:
        ids = [r.id for r in await conn.execute(select(deliveries.c.id).order_by(deliveries.c.id))]
        await conn.execute(
            deliveries.update().where(deliveries.c.id == ids[0]).values(status="delivered")
        )
    middle = await push_progress(engine, info.id)
    assert (middle.status, middle.sent, middle.pending, middle.finished) == ("sending", 1, 2, False)
    async with engine.begin() as conn:
        await conn.execute(
            deliveries.update().where(deliveries.c.id == ids[1]).values(status="sent")
        )
        await conn.execute(
            deliveries.update().where(deliveries.c.id == ids[2]).values(status="dead")
        )
    end = await push_progress(engine, info.id)
    assert (end.status, end.sent, end.failed, end.pending, end.finished) == ("done", 2, 1, 0, True)


async def test_a_push_at_a_time_is_due_then_in_the_cohorts_zone(
    engine: AsyncEngine, staff: Staff
) -> None:
    await enrol(engine, staff.toms_cohort.id, "active")
    at = parse_send_at("2099-12-01 09:00", "Africa/Nairobi")
    assert at == datetime(2099, 12, 1, 6, 0, tzinfo=UTC)
    info = await start_push(
        engine,
        user=staff.tom,
        cohort_id_or_code=staff.toms_cohort.join_code,
        lesson_id=LESSON,
        send_at=at,
    )
    assert info.status == "scheduled"
    async with engine.connect() as conn:
        assert await conn.scalar(select(deliveries.c.due_at)) == at
    with pytest.raises(PushError, match="--at"):
        parse_send_at("tomorrow 9am", "Africa/Nairobi")


async def test_a_push_needs_a_lesson_of_the_pathway_and_an_active_cohort(
    cli: Cli, engine: AsyncEngine, staff: Staff, courses: dict[str, LoadedCourse]
) -> None:
    with pytest.raises(PushError, match="has a lesson 'no-such-lesson'"):
        find_lesson(staff.toms_cohort, "no-such-lesson", courses)
    paused = await cli("cohort", "pause", staff.toms_cohort.join_code, user="tom@example.org")
    assert paused.exit_code == 0
    with pytest.raises(CohortError, match="is paused"):
        await start_push(
            engine, user=staff.tom, cohort_id_or_code=staff.toms_cohort.join_code, lesson_id=LESSON
        )
    assert await count(engine, pushes) == 0


async def test_push_and_cancel_from_the_command_line(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    await enrol(engine, staff.toms_cohort.id, "active", "active", channel="whatsapp")
    started = await cli(
        "cohort",
        "push",
        staff.toms_cohort.join_code,
        LESSON,
        "--no-wait",
        "--at",
        "2099-01-01 09:00",
        user="tom@example.org",
        env=CHANNELS_ON,
    )
    assert started.exit_code == 0, started.output
    assert "push 1: user-centred-design to 2 learners of Tom's group (2 whatsapp)" in (
        started.output
    )
    assert "estimated time to send" in started.output
    cancelled = await cli("cohort", "push", "--cancel", "1", user="tom@example.org")
    assert cancelled.exit_code == 0, cancelled.output
    assert "push 1 cancelled: 0/2 sent, 0 failed, 0 pending, 2 cancelled" in cancelled.output
    assert await count(engine, deliveries, deliveries.c.status == "cancelled") == 2


def test_eta_takes_the_slowest_channel_at_its_limit() -> None:
    settings = Settings(twilio_sms_mps=10.0, twilio_whatsapp_mps=80.0)
    cost = LessonCost({"sms": 3, "whatsapp": 2, "telegram": 2})
    # SMS: 1,000 learners x 3 segments / 10 per s = 300 s; WhatsApp 8,000 x 2 / 80 = 200 s;
    # Telegram 3,000 x 2 / 30 = 200 s; the sandbox has no limit.
    pending = {"sms": 1000, "whatsapp": 8000, "telegram": 3000, "sandbox": 10**6}
    assert estimate_seconds(pending, cost, settings) == pytest.approx(300.0)
    assert estimate_seconds({"telegram": 3000}, cost, settings) == pytest.approx(200.0)
    assert estimate_seconds({}, cost, settings) == 0.0


def test_a_lessons_cost_counts_sms_segments(courses: dict[str, LoadedCourse]) -> None:
    lesson = courses["digital-skills"].lessons[LESSON]
    cost = lesson_cost(lesson, Settings())
    assert cost.of("telegram") == 2  # the lesson and its first question
    assert cost.of("sms") > cost.of("telegram")  # a 480-character body takes several segments


async def test_push_waits_and_shows_progress_until_everything_is_sent(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    await enrol(engine, staff.toms_cohort.id, "active", "active", "active", channel="telegram")

    async def dispatcher() -> None:
        # Stands in for the dispatcher: sends whatever the push queued.
        while await count(engine, deliveries) < 3:
            await asyncio.sleep(0.05)
        async with engine.begin() as conn:
            await conn.execute(deliveries.update().values(status="sent"))

    sender = asyncio.create_task(dispatcher())
    result = await asyncio.wait_for(
        cli(
            "cohort",
            "push",
            staff.toms_cohort.join_code,
            LESSON,
            user="tom@example.org",
            env=CHANNELS_ON,
        ),
        30,
    )
    await sender
    assert result.exit_code == 0, result.output
    assert "push 1 done: 3/3 sent, 0 failed, 0 pending, 0 cancelled" in result.output


# --- learners on channels not configured, progress, status ----------------------------------


async def enrol_named(
    engine: AsyncEngine, cohort_id: int, channel: str, *names: str | None
) -> list[int]:
    """Active learners with these names on `channel`, enrolled in the cohort."""
    return await enrol_learners(engine, cohort_id, [{"channel": channel, "name": n} for n in names])


async def test_a_push_with_no_channel_configured_names_the_learners_and_returns_at_once(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    # Today: with `make run`'s settings (no Telegram token, no Twilio), the push printed an
    # ETA, then nothing for ten minutes, and its lessons sat pending where nobody sent them.
    cohort = staff.toms_cohort
    await enrol_named(engine, cohort.id, "sms", "Amina", "Baraka")
    await enrol_named(engine, cohort.id, "whatsapp", "Chen")
    await enrol_named(engine, cohort.id, "telegram", "Dina")
    result = await asyncio.wait_for(
        cli("cohort", "push", cohort.join_code, LESSON, user="tom@example.org"), 20
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"push 1: {LESSON} to 0 learners of Tom's group"
    assert lines[1:] == [
        "  2 learners on sms cannot be reached: the channel is not configured (set "
        "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SMS_FROM/"
        "TWILIO_MESSAGING_SERVICE_SID); not queued",
        "    Amina, Baraka",
        "  1 learner on telegram cannot be reached: the channel is not configured (set "
        "TELEGRAM_BOT_TOKEN); not queued",
        "    Dina",
        "  1 learner on whatsapp cannot be reached: the channel is not configured (set "
        "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM); not queued",
        "    Chen",
    ]
    assert await count(engine, deliveries) == 0  # nothing left pending where nobody sends
    async with engine.connect() as conn:
        assert await conn.scalar(select(pushes.c.status)) == "done"
    listed = await cli("outbox", "pending", user="tom@example.org")
    assert listed.output == "nothing waits in the outbox\n"


async def test_only_the_learners_on_configured_channels_are_queued(
    engine: AsyncEngine, staff: Staff
) -> None:
    cohort = staff.toms_cohort
    await enrol_named(engine, cohort.id, "sms", *[f"S{i}" for i in range(7)], None)
    telegram = await enrol_named(engine, cohort.id, "telegram", "T0", "T1")
    info = await start_push(
        engine,
        user=staff.tom,
        cohort_id_or_code=cohort.join_code,
        lesson_id=LESSON,
        channels={"telegram", "sandbox"},
        batch_size=1,
    )
    assert (info.total, info.skipped, info.by_channel) == (2, 0, {"telegram": 2})
    unreachable = info.unreachable_by_channel()
    assert list(unreachable) == ["sms"]
    assert [learner.name for learner in unreachable["sms"]] == [*[f"S{i}" for i in range(7)], None]
    async with engine.connect() as conn:
        queued = [r.enrollment_id for r in await conn.execute(select(deliveries.c.enrollment_id))]
    assert sorted(queued) == telegram


async def test_more_than_five_unreachable_learners_are_counted_and_the_unnamed_pseudonymised(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    await enrol_named(engine, staff.toms_cohort.id, "sms", None, *[f"S{i}" for i in range(6)])
    result = await cli(
        "cohort", "push", staff.toms_cohort.join_code, LESSON, user="tom@example.org"
    )
    names = result.output.splitlines()[2].strip().split(", ")
    assert len(names[0]) == 16 and names[0].isalnum()  # the pseudonym, never the number
    assert names[1:] == ["S0", "S1", "S2", "S3", "and 2 more"]
    assert "+254" not in result.output


async def test_progress_is_shown_while_sending_and_a_stall_says_why(
    cli: Cli, engine: AsyncEngine, staff: Staff, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.trainers import commands

    monkeypatch.setattr(commands, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(commands, "LINE_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(commands, "STALL_SECONDS", 0.5)
    await enrol(engine, staff.toms_cohort.id, *["active"] * 3, channel="telegram")
    await enrol_named(engine, staff.toms_cohort.id, "sms", "Amina")

    async def dispatcher() -> None:
        # Sends one lesson, then stalls (as when `serve` is not running) until the push has
        # said why, then sends the rest.
        while await count(engine, deliveries) < 3:
            await asyncio.sleep(0.02)
        async with engine.begin() as conn:
            first = await conn.scalar(select(deliveries.c.id).order_by(deliveries.c.id))
            await conn.execute(
                deliveries.update().where(deliveries.c.id == first).values(status="sent")
            )
        await asyncio.sleep(1.5)
        async with engine.begin() as conn:
            await conn.execute(deliveries.update().values(status="sent"))

    sender = asyncio.create_task(dispatcher())
    env = {**CHANNELS_ON, "TWILIO_SMS_FROM": None}  # Telegram and WhatsApp, but no SMS sender
    result = await asyncio.wait_for(
        cli("cohort", "push", staff.toms_cohort.join_code, LESSON, user="tom@example.org", env=env),
        30,
    )
    await sender
    assert result.exit_code == 0, result.output
    out = result.output
    assert "1 learner on sms cannot be reached" in out
    assert "push 1 sending: 1/3 sent, 0 failed, 2 pending, 0 cancelled  ETA " in out
    assert "nothing sent for " in out and "; what the push waits for:" in out
    assert "  telegram: 2 deliveries not sent yet" in out
    assert "    2 due, in line at the channel's rate (about 1 s); the oldest waiting for" in out
    assert "  is learnbot serve running? Ctrl-C cancels the push." in out
    assert out.count("nothing sent for") == 1  # said once per stall, not every second
    assert out.rstrip().endswith("push 1 done: 3/3 sent, 0 failed, 0 pending, 0 cancelled")


async def test_status_shows_where_a_push_stands_and_what_it_waits_for(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    await enrol(engine, staff.toms_cohort.id, "active", "active", channel="whatsapp")
    started = await cli(
        "cohort",
        "push",
        staff.toms_cohort.join_code,
        LESSON,
        "--no-wait",
        user="tom@example.org",
        env=CHANNELS_ON,
    )
    assert started.exit_code == 0, started.output
    async with engine.begin() as conn:
        first = await conn.scalar(select(deliveries.c.id).order_by(deliveries.c.id))
        await conn.execute(
            deliveries.update().where(deliveries.c.id == first).values(status="held")
        )
    status = await cli("cohort", "push", "--status", "1", user="tom@example.org", env=CHANNELS_ON)
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    assert lines[:3] == [
        "push 1 sending: 0/2 sent, 0 failed, 1 pending, 0 cancelled, "
        "1 waiting for a WhatsApp reply",
        "  whatsapp: 2 deliveries not sent yet",
        "    1 waits for the learner's reply to the WhatsApp template (24-hour window)",
    ]
    assert lines[3].startswith(
        "    1 due, in line at the channel's rate (about 1 s); the oldest waiting for "
    )
    assert len(lines) == 4
    refused = await cli("cohort", "push", "--status", "1", user="una@example.org")
    assert refused.exit_code == 1 and "Tom's group" in refused.output


async def test_a_learner_who_already_has_the_lesson_is_not_reported_unreachable(
    engine: AsyncEngine, staff: Staff
) -> None:
    cohort = staff.toms_cohort
    await enrol_named(engine, cohort.id, "sms", "Amina", "Baraka")
    first = await start_push(
        engine, user=staff.tom, cohort_id_or_code=cohort.join_code, lesson_id=LESSON
    )  # while SMS was configured: both queued, then Amina's sent
    async with engine.begin() as conn:
        amina = await conn.scalar(select(deliveries.c.id).order_by(deliveries.c.id))
        await conn.execute(
            deliveries.update().where(deliveries.c.id == amina).values(status="sent")
        )
    await cancel_push(engine, user=staff.tom, push_id=first.id)  # Baraka's is cancelled
    again = await start_push(
        engine,
        user=staff.tom,
        cohort_id_or_code=cohort.join_code,
        lesson_id=LESSON,
        channels={"telegram", "sandbox"},  # SMS is no longer configured
    )
    assert [learner.name for learner in again.unreachable] == ["Baraka"]
    assert (again.total, again.skipped) == (0, 0)
