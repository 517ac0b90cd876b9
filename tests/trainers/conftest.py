"""Staff users, a cohort per trainer, and a `cli` helper that runs `learnbot` on the `engine`.

result = await cli("cohort", "show", "1", user="tom@example.org")
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.domain import Role
from bot.lessons.loader import LoadedCourse, load_courses
from bot.trainers.cohorts import CohortInfo, create_cohort
from bot.trainers.roles import UserRecord, add_user
from scheduler.schedule import Schedule

ROOT = Path(__file__).resolve().parents[2]
LESSON = "user-centred-design"  # a lesson of the shipped digital-skills course

Cli = Callable[..., Awaitable[Result]]


@dataclass(frozen=True, slots=True)
class Staff:
    """An admin and two trainers, each trainer owning one cohort."""

    admin: UserRecord
    tom: UserRecord
    una: UserRecord
    toms_cohort: CohortInfo
    unas_cohort: CohortInfo


@pytest.fixture(scope="session")
def courses() -> dict[str, LoadedCourse]:
    """The shipped courses."""
    return load_courses(ROOT / "lessons")


@pytest.fixture
async def staff(engine: AsyncEngine, courses: dict[str, LoadedCourse]) -> Staff:
    """Ada (admin), Tom and Una (trainers) with a Nairobi cohort each."""
    async with engine.begin() as conn:
        admin = await add_user(conn, name="Ada", email="ada@example.org", role=Role.ADMIN)
        tom = await add_user(conn, name="Tom", email="tom@example.org", role=Role.TRAINER)
        una = await add_user(
            conn, name="Una", email="una@example.org", role=Role.TRAINER, telegram_chat_id="555"
        )
        cohorts = [
            await create_cohort(
                conn,
                owner=owner,
                name=name,
                course_ids=["digital-skills"],
                courses=courses,
                time_zone="Africa/Nairobi",
                schedule=Schedule(pacing="self_paced"),
            )
            for owner, name in ((tom, "Tom's group"), (una, "Una's group"))
        ]
    return Staff(admin, tom, una, *cohorts)


# What picks the language of the trainer commands; unset unless a test sets one.
LOCALE_VARIABLES = ("LEARNBOT_CLI_LOCALE", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LC_CTYPE", "LANG")

# Which channels the commands see configured: none unless a test passes `env=CHANNELS_ON`
# (what `make run` gives), whatever the machine running the tests has set.
CHANNEL_VARIABLES = (
    "TELEGRAM_BOT_TOKEN",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_SMS_FROM",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_WHATSAPP_FROM",
)
CHANNELS_ON = {
    "TELEGRAM_BOT_TOKEN": "123456:test-token",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "test-auth-token",
    "TWILIO_SMS_FROM": "+15005550006",
    "TWILIO_WHATSAPP_FROM": "whatsapp:+15005550006",
}


@pytest.fixture
def cli(database_url: str, engine: AsyncEngine) -> Cli:
    """Run `learnbot ARGS...` against the test database, as `user` (LEARNBOT_USER) if given.

    The commands speak English unless `locale` (LEARNBOT_CLI_LOCALE) or `env` (e.g. LANG)
    says otherwise, and see no channel configured unless `env` sets one (`CHANNELS_ON`),
    whatever the machine running the tests is set to.
    """

    async def run(
        *args: str,
        user: str | None = None,
        input: str | None = None,
        locale: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        settings: dict[str, str | None] = dict.fromkeys(LOCALE_VARIABLES + CHANNEL_VARIABLES)
        settings.update(
            {
                "LEARNBOT_DATABASE_URL": database_url,
                "LEARNBOT_LESSONS_DIR": str(ROOT / "lessons"),
                "LEARNBOT_LOCALES_DIR": str(ROOT / "locales"),
                "LEARNBOT_USER": user or "",
                "TELEGRAM_BOT_USERNAME": "learnbot_test_bot",
                "LEARNBOT_CLI_LOCALE": locale,
                **(env or {}),
            }
        )
        # The command runs its own event loop: give it a thread of its own.
        return await asyncio.to_thread(
            CliRunner().invoke, main, list(args), env=settings, input=input, catch_exceptions=False
        )

    return run


async def count(engine: AsyncEngine, table: object, *where: object) -> int:
    """Rows of `table` matching `where`."""
    async with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
        return int((await conn.execute(query)).scalar_one())
