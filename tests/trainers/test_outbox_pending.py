"""`learnbot outbox pending`: what waits and why, by channel, for the user's own cohorts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import utcnow
from bot.store.tables import deliveries
from bot.trainers.push import start_push
from tests.store.rows import insert_enrollment, insert_learner
from tests.trainers.conftest import CHANNELS_ON, LESSON, Cli, Staff


async def enrol(engine: AsyncEngine, cohort_id: int, channel: str, n: int) -> None:
    async with engine.begin() as conn:
        for _ in range(n):
            learner = await insert_learner(conn, channel=channel)
            await insert_enrollment(conn, learner["id"], cohort_id)


async def test_pending_lists_reasons_for_the_users_cohorts_by_pseudonym(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    await enrol(engine, staff.toms_cohort.id, "sms", 7)
    await enrol(engine, staff.unas_cohort.id, "telegram", 1)
    # Queued while every channel was configured (or by the planner): now SMS is not.
    for user, cohort in ((staff.tom, staff.toms_cohort), (staff.una, staff.unas_cohort)):
        await start_push(engine, user=user, cohort_id_or_code=cohort.join_code, lesson_id=LESSON)
    async with engine.begin() as conn:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id == 1)
            .values(
                due_at=utcnow() + timedelta(hours=2)  # the SMS one is not configured either
            )
        )
    toms = await cli("outbox", "pending", user="tom@example.org")
    assert toms.exit_code == 0, toms.output
    lines = toms.output.splitlines()
    assert lines[:2] == [
        "sms: 7 deliveries not sent yet",
        "  7 wait: the channel is not configured (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
        "TWILIO_SMS_FROM/TWILIO_MESSAGING_SERVICE_SID, then restart learnbot serve)",
    ]
    examples = lines[2:7]
    assert [line.split("\t")[0].strip() for line in examples] == ["1", "2", "3", "4", "5"]
    assert all(len(line.split("\t")[1]) == 16 for line in examples)  # pseudonyms
    assert lines[7:] == ["    and 2 more (--all lists them all)"]
    assert "+254" not in toms.output and "telegram" not in toms.output  # Una's: not Tom's

    everything = await cli("outbox", "pending", "--all", user="ada@example.org", env=CHANNELS_ON)
    assert everything.exit_code == 0, everything.output
    lines = everything.output.splitlines()
    assert lines[0] == "sms: 7 deliveries not sent yet"
    assert lines[1] == "  1 scheduled for later (a set time or quiet hours): the next in 2 h 00 min"
    assert len([line for line in lines if "\t" in line]) == 8  # every row, Una's too
    assert "telegram: 1 delivery not sent yet" in lines

    unas = await cli("outbox", "pending", "--cohort", staff.toms_cohort.join_code,
                     user="una@example.org")  # fmt: skip
    assert unas.exit_code == 1 and "Tom's group" in unas.output
    nobody = await cli("outbox", "pending")
    assert nobody.exit_code == 1 and "LEARNBOT_USER" in nobody.output


async def test_pending_speaks_the_trainers_language(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    empty = await cli("outbox", "pending", user="tom@example.org", locale="fr")
    assert (empty.exit_code, empty.output) == (0, "rien n'attend dans la file d'envoi\n")
    await enrol(engine, staff.toms_cohort.id, "whatsapp", 2)
    await start_push(
        engine, user=staff.tom, cohort_id_or_code=staff.toms_cohort.join_code, lesson_id=LESSON
    )
    result = await cli("outbox", "pending", "--push", "1", user="tom@example.org", locale="ar")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        "\u2068whatsapp\u2069: لم يُرسل بعد: \u20682\u2069",
        "  \u20682\u2069 بالانتظار: القناة غير مهيأة (اضبط \u2068TWILIO_ACCOUNT_SID, "
        "TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM\u2069، ثم أعد تشغيل \u2068learnbot serve\u2069)",
    ]
