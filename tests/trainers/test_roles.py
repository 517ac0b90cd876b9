"""Roles: a trainer acts only on their own cohorts, an admin on all; who acts is always named."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.tables import cohorts, deliveries, enrollments, pushes, users
from bot.trainers.roles import user_by_telegram_chat
from tests.trainers.conftest import LESSON, Cli, Staff, count


async def test_a_trainer_cannot_act_on_another_trainers_cohort(
    cli: Cli, engine: AsyncEngine, staff: Staff, tmp_path: Path
) -> None:
    csv_file = tmp_path / "l.csv"
    csv_file.write_text("name,phone,channel,locale\nAmina,+254712345678,sms,sw\n")
    unas = staff.unas_cohort.join_code
    attempts = [
        ("cohort", "show", unas),
        ("cohort", "push", unas, LESSON, "--no-wait"),
        ("cohort", "import", unas, str(csv_file)),
        ("cohort", "pause", unas),
        ("cohort", "schedule", unas, "--days", "mon"),
    ]
    for args in attempts:
        result = await cli(*args, user="tom@example.org")
        assert result.exit_code == 1, args
        assert 'may not act on cohort "Una\'s group"' in result.output, args
    assert await count(engine, pushes) == 0
    assert await count(engine, enrollments) == 0
    async with engine.connect() as conn:
        status, schedule = (
            await conn.execute(
                select(cohorts.c.status, cohorts.c.schedule).where(
                    cohorts.c.id == staff.unas_cohort.id
                )
            )
        ).one()
    assert status == "active" and schedule["days"] == ["mon", "tue", "wed", "thu", "fri"]


async def test_a_trainer_acts_on_their_own_cohort_and_an_admin_on_all(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    own = await cli("cohort", "show", staff.toms_cohort.join_code, user="tom@example.org")
    assert own.exit_code == 0 and "Tom's group" in own.output
    for cohort in (staff.toms_cohort, staff.unas_cohort):
        shown = await cli("cohort", "show", str(cohort.id), user="ada@example.org")
        assert shown.exit_code == 0 and cohort.name in shown.output
        paused = await cli("cohort", "pause", str(cohort.id), "--as", "ada@example.org")
        assert paused.exit_code == 0
    assert await count(engine, cohorts, cohorts.c.status == "paused") == 2


async def test_list_shows_a_trainer_only_their_cohorts(cli: Cli, staff: Staff) -> None:
    toms = await cli("cohort", "list", user="tom@example.org")
    assert "Tom's group" in toms.output and "Una's group" not in toms.output
    admins = await cli("cohort", "list", user="ada@example.org")
    assert "Tom's group" in admins.output and "Una's group" in admins.output


async def test_commands_refuse_an_unnamed_or_unknown_user(cli: Cli, staff: Staff) -> None:
    unnamed = await cli("cohort", "list")
    assert unnamed.exit_code == 1 and "--as EMAIL" in unnamed.output
    assert "LEARNBOT_USER" in unnamed.output
    unknown = await cli("cohort", "list", user="eve@example.org")
    assert unknown.exit_code == 1 and "'eve@example.org'" in unknown.output


async def test_only_an_admin_may_create_a_cohort_for_someone_else(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    args = (
        "cohort",
        "create",
        "Dakar",
        "--course",
        "digital-skills",
        "--time-zone",
        "Africa/Dakar",
        "--owner",
        "una@example.org",
    )
    refused = await cli(*args, user="tom@example.org")
    assert refused.exit_code == 1 and "only an admin" in refused.output
    made = await cli(*args, user="ada@example.org")
    assert made.exit_code == 0, made.output
    async with engine.connect() as conn:
        owner = await conn.scalar(select(cohorts.c.owner_id).where(cohorts.c.name == "Dakar"))
    assert owner == staff.una.id


async def test_the_first_user_is_an_admin_who_then_adds_the_others(
    cli: Cli, engine: AsyncEngine
) -> None:
    trainer_first = await cli("user", "add", "Tom", "--email", "tom@x.org", "--role", "trainer")
    assert trainer_first.exit_code == 1 and "add an admin first" in trainer_first.output
    admin = await cli("user", "add", "Ada", "--email", "Ada@X.org", "--role", "admin")
    assert admin.exit_code == 0, admin.output
    anonymous = await cli("user", "add", "Tom", "--email", "tom@x.org", "--role", "trainer")
    assert anonymous.exit_code == 1
    added = await cli(
        "user",
        "add",
        "Tom",
        "--email",
        "tom@x.org",
        "--role",
        "trainer",
        "--telegram-chat-id",
        "42",
        "--phone",
        "+254712345678",
        user="ada@x.org",
    )
    assert added.exit_code == 0, added.output
    by_trainer = await cli(
        "user", "add", "Una", "--email", "una@x.org", "--role", "trainer", user="tom@x.org"
    )
    assert by_trainer.exit_code == 1 and "only an admin may add users" in by_trainer.output
    duplicate = await cli(
        "user", "add", "Tom 2", "--email", "TOM@x.org", "--role", "trainer", user="ada@x.org"
    )
    assert duplicate.exit_code == 1 and "--email: tom@x.org already belongs to Tom" in (
        duplicate.output
    )
    listed = await cli("user", "list")
    assert "admin    Ada <ada@x.org>" in listed.output
    assert "telegram 42" in listed.output and "phone +254712345678" in listed.output
    assert await count(engine, users) == 2
    async with engine.connect() as conn:
        tom = await user_by_telegram_chat(conn, 42)
    assert tom is not None and tom.name == "Tom"


async def test_a_trainer_cannot_cancel_another_trainers_push(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    started = await cli(
        "cohort", "push", staff.unas_cohort.join_code, LESSON, "--no-wait", user="una@example.org"
    )
    assert started.exit_code == 0, started.output
    refused = await cli("cohort", "push", "--cancel", "1", user="tom@example.org")
    assert refused.exit_code == 1 and "Una's group" in refused.output
    assert await count(engine, pushes, pushes.c.status == "cancelled") == 0
    assert await count(engine, deliveries) == 0
