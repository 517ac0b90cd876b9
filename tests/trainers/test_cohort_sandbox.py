"""A trainer opens a cohort to the public /sandbox; its visitors stay out of the figures."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import ChannelName, EventType
from bot.store.events import EventRow, append_events
from bot.store.tables import cohorts
from tests.store.rows import insert_enrollment, insert_learner
from tests.trainers.conftest import Cli, Staff


async def is_open(engine: AsyncEngine, cohort_id: int) -> bool:
    async with engine.connect() as conn:
        query = select(cohorts.c.open_to_sandbox).where(cohorts.c.id == cohort_id)
        return bool((await conn.execute(query)).scalar_one())


async def test_a_cohort_is_closed_to_the_sandbox_unless_created_with_sandbox(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    result = await cli(
        "cohort", "create", "Try-out", "--course", "digital-skills",
        "--time-zone", "Africa/Nairobi", "--sandbox", user="tom@example.org",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "open to the sandbox" in result.output
    assert not await is_open(engine, staff.toms_cohort.id)
    async with engine.connect() as conn:
        row = (await conn.execute(select(cohorts).where(cohorts.c.name == "Try-out"))).one()
    assert row.open_to_sandbox is True


async def test_sandbox_on_and_off(cli: Cli, engine: AsyncEngine, staff: Staff) -> None:
    code = staff.toms_cohort.join_code

    on = await cli("cohort", "sandbox", code, "on", user="tom@example.org")
    again = await cli("cohort", "sandbox", code, "on", user="tom@example.org")
    shown = await cli("cohort", "show", code, user="tom@example.org")

    assert on.exit_code == 0, on.output
    assert on.output == "cohort Tom's group is open to the sandbox\n"
    assert "(it already was)" in again.output
    assert await is_open(engine, staff.toms_cohort.id)
    assert "open (visitors of /sandbox can join)" in shown.output

    off = await cli("cohort", "sandbox", code, "off", user="tom@example.org")
    assert off.output == "cohort Tom's group is closed to the sandbox\n"
    assert not await is_open(engine, staff.toms_cohort.id)


async def test_a_trainer_cannot_open_another_trainers_cohort(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    result = await cli(
        "cohort", "sandbox", staff.unas_cohort.join_code, "on", user="tom@example.org"
    )

    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert not await is_open(engine, staff.unas_cohort.id)


async def test_sandbox_command_is_translated(cli: Cli, staff: Staff) -> None:
    code = staff.toms_cohort.join_code

    result = await cli("cohort", "sandbox", code, "on", user="tom@example.org", locale="fr")

    assert result.exit_code == 0, result.output
    assert "sandbox" not in result.output.replace("/sandbox", "")


async def test_show_and_list_leave_sandbox_visitors_out_unless_asked(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    cohort = staff.toms_cohort
    async with engine.begin() as conn:
        for name, channel in (("Amina", "sms"), ("Visitor", "sandbox")):
            learner = await insert_learner(
                conn, name=name, channel=channel, address=f"web-{name.lower()}-0001"
            )
            await insert_enrollment(conn, learner["id"], cohort.id)
            await append_events(
                conn,
                [
                    EventRow(
                        type=EventType.LESSON_COMPLETED,
                        learner_key=learner["learner_key"],
                        cohort_id=cohort.id,
                        lesson_id="pre-assessment",
                        channel=ChannelName(channel),
                    )
                ],
            )

    shown = await cli("cohort", "show", cohort.join_code, "--learners", user="tom@example.org")
    everyone = await cli(
        "cohort", "show", cohort.join_code, "--learners", "--include-sandbox",
        user="tom@example.org",
    )  # fmt: skip
    listed = await cli("cohort", "list", user="tom@example.org")

    lines = [line.split() for line in shown.output.splitlines()]
    assert ["learners:", "1"] in lines and ["pre-assessment", "1"] in lines
    assert "Visitor" not in shown.output
    all_lines = [line.split() for line in everyone.output.splitlines()]
    assert ["learners:", "2"] in all_lines and ["pre-assessment", "2"] in all_lines
    assert "Visitor" in everyone.output
    assert "1 learner " in listed.output
