"""A trainer gives a cohort its name per locale: learners read it, trainers see it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.tables import cohorts
from tests.trainers.conftest import Cli, Staff

CREATE = ("cohort", "create", "Nairobi officials", "--course", "digital-skills",
          "--time-zone", "Africa/Nairobi")  # fmt: skip


async def names_of(engine: AsyncEngine, cohort_id: int) -> object:
    async with engine.connect() as conn:
        query = select(cohorts.c.names).where(cohorts.c.id == cohort_id)
        return (await conn.execute(query)).scalar_one()


async def test_create_with_a_name_per_locale(cli: Cli, engine: AsyncEngine, staff: Staff) -> None:
    result = await cli(
        *CREATE, "--name-in", "sw", "Maafisa wa Nairobi", "--name-in", "ar", "مسؤولو نيروبي",
        user="tom@example.org",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "name in sw: Maafisa wa Nairobi" in result.output
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(cohorts).where(cohorts.c.name == "Nairobi officials"))
        ).one()
    assert row.names == {"ar": "مسؤولو نيروبي", "sw": "Maafisa wa Nairobi"}
    shown = await cli("cohort", "show", row.join_code, user="tom@example.org")
    assert "names:" in shown.output and "sw Maafisa wa Nairobi" in shown.output


async def test_create_refuses_an_unknown_locale_and_creates_nothing(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    result = await cli(*CREATE, "--name-in", "sp", "Oficiales", user="tom@example.org")

    assert result.exit_code == 1
    assert result.output.startswith("Error: --name-in: 'sp' is not one of the bot's languages: ")
    assert "es" in result.output and "Traceback" not in result.output
    async with engine.connect() as conn:
        found = await conn.execute(select(cohorts).where(cohorts.c.name == "Nairobi officials"))
        assert found.first() is None


async def test_set_show_and_remove_a_name(cli: Cli, engine: AsyncEngine, staff: Staff) -> None:
    code, cohort_id = staff.toms_cohort.join_code, staff.toms_cohort.id

    none_yet = await cli("cohort", "name", code, user="tom@example.org")
    set_ = await cli("cohort", "name", code, "sw", "Kundi la Tom", user="tom@example.org")
    again = await cli("cohort", "name", code, "sw", "Kundi la Tom", user="tom@example.org")
    regional = await cli("cohort", "name", code, "pt-BR", "Turma do Tom", user="tom@example.org")
    listed = await cli("cohort", "name", code, user="tom@example.org")

    assert none_yet.output == "cohort Tom's group: - (every learner reads Tom's group)\n"
    assert set_.output == "cohort Tom's group is named Kundi la Tom in sw\n"
    assert again.output == "cohort Tom's group is named Kundi la Tom in sw (it already was)\n"
    assert regional.exit_code == 1 and "'pt-BR' is not one of the bot's languages" in (
        regional.output
    )
    assert listed.output == "cohort Tom's group: sw Kundi la Tom\n"
    assert await names_of(engine, cohort_id) == {"sw": "Kundi la Tom"}

    removed = await cli("cohort", "name", code, "sw", "--remove", user="tom@example.org")
    twice = await cli("cohort", "name", code, "sw", "--remove", user="tom@example.org")

    assert removed.output == (
        "cohort Tom's group: no name of its own in sw now; learners read Tom's group\n"
    )
    assert twice.output == "cohort Tom's group had no name of its own in sw\n"
    assert await names_of(engine, cohort_id) is None


async def test_name_needs_a_name_or_remove(cli: Cli, staff: Staff) -> None:
    code = staff.toms_cohort.join_code

    missing = await cli("cohort", "name", code, "sw", user="tom@example.org")
    both = await cli("cohort", "name", code, "sw", "Kundi", "--remove", user="tom@example.org")
    empty = await cli("cohort", "name", code, "sw", "  ", user="tom@example.org")
    long = await cli("cohort", "name", code, "sw", "x" * 201, user="tom@example.org")

    assert (
        missing.exit_code == 2 and "give NAME to set the name in sw, or --remove" in missing.output
    )
    assert both.exit_code == 2
    assert empty.exit_code == 1 and "NAME: must not be empty" in empty.output
    assert long.exit_code == 1 and "at most 200 characters" in long.output


async def test_a_trainer_cannot_name_another_trainers_cohort(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    code = staff.unas_cohort.join_code

    refused = await cli("cohort", "name", code, "sw", "Kundi", user="tom@example.org")
    by_admin = await cli("cohort", "name", code, "sw", "Kundi la Una", user="ada@example.org")

    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert by_admin.exit_code == 0, by_admin.output
    assert await names_of(engine, staff.unas_cohort.id) == {"sw": "Kundi la Una"}


async def test_name_speaks_the_trainers_language(cli: Cli, staff: Staff) -> None:
    code = staff.toms_cohort.join_code

    result = await cli(
        "cohort", "name", code, "ar", "مجموعة توم", user="tom@example.org", locale="fr"
    )

    assert result.exit_code == 0, result.output
    assert "s'appelle" in result.output
