"""`/push` from a trainer's Telegram chat says how many learners cannot be reached."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import Role
from bot.i18n import UiCatalogs
from bot.lessons.loader import load_courses
from bot.store.tables import deliveries
from bot.trainers.cohorts import create_cohort
from bot.trainers.roles import add_user
from bot.web.telegram import TelegramStaffCommands
from scheduler.schedule import Schedule
from tests.store.rows import insert_enrollment, insert_learner
from tests.trainers.conftest import LESSON, count

ROOT = Path(__file__).resolve().parents[2]


async def test_push_from_telegram_counts_the_learners_on_channels_not_configured(
    engine: AsyncEngine,
) -> None:
    courses = load_courses(ROOT / "lessons")
    async with engine.begin() as conn:
        tess = await add_user(
            conn, name="Tess", email="tess@example.org", role=Role.TRAINER, telegram_chat_id="77"
        )
        cohort = await create_cohort(
            conn,
            owner=tess,
            name="Field staff",
            course_ids=["digital-skills"],
            courses=courses,
            time_zone="Africa/Nairobi",
            schedule=Schedule(pacing="self_paced"),
        )
        for channel in ("telegram", "sms", "sms", "whatsapp"):
            learner = await insert_learner(conn, channel=channel)
            await insert_enrollment(conn, learner["id"], cohort.id)
    staff = TelegramStaffCommands(
        engine, courses, UiCatalogs(ROOT / "locales"), channels={"telegram", "sandbox"}
    )
    reply = await staff("77", f"/push {cohort.join_code} {LESSON}", "en")
    assert reply == (
        f"Push 1 started: lesson {LESSON} to 1 learner of Field staff (0 already had it). "
        "3 learners cannot be reached: sms, whatsapp not configured (not queued)."
    )
    assert await count(engine, deliveries) == 1
    french = await staff("77", f"/push {cohort.join_code} {LESSON}", "fr")
    assert french is not None
    assert french.endswith("3 apprenants sont injoignables : sms, whatsapp non configuré "
                           "(pas mis en file).")  # fmt: skip
