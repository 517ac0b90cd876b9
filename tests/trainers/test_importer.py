"""`cohort import`: every row validated first, errors by line and field, STOP survives re-import."""

from __future__ import annotations

import io
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import EventType, LearnerStatus
from bot.store.tables import enrollments, events, learners
from bot.trainers.importer import import_learners, parse_csv, read_csv
from tests.trainers.conftest import Cli, Staff, count

GOOD = (
    "name,phone,channel,locale,time_zone\n"
    "Amina Njeri,+254712345678,sms,sw,\n"
    "Awa Diop,+221771234567,whatsapp,fr,\n"
    "Dan,123456789,telegram,en,\n"
    "Paula,+254712345679,sms,pt-BR,Europe/Lisbon\n"
)


def write(tmp_path: Path, text: str, name: str = "learners.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_bad_rows_are_reported_by_line_and_field_and_nothing_is_imported(
    cli: Cli, engine: AsyncEngine, staff: Staff, tmp_path: Path
) -> None:
    csv_file = write(
        tmp_path,
        "name,phone,channel,locale,time_zone\n"
        "Amina,+254712345678,sms,sw,\n"  # line 2: fine
        "Bad Phone,+2547,sms,en,\n"  # line 3
        "Fax,+254712345670,fax,en,\n"  # line 4
        "Klingon,+254712345671,sms,tlh,\n"  # line 5
        "Mars,+254712345672,sms,en,Mars/Olympus\n"  # line 6
        "Amina again,+254 712 345 678,sms,sw,\n",  # line 7: same number as line 2
    )
    result = await cli(
        "cohort", "import", staff.toms_cohort.join_code, str(csv_file), user="tom@example.org"
    )
    assert result.exit_code == 1
    out = result.output
    assert f"{csv_file}:3: phone: '+2547'" in out
    assert f"{csv_file}:4: channel: unknown channel 'fax'" in out
    assert f"{csv_file}:5: locale:" in out and "'tlh'" in out
    assert f"{csv_file}:6: time_zone: unknown time zone 'Mars/Olympus'" in out
    assert f"{csv_file}:7: phone: +254712345678 is already on line 2" in out
    assert "5 bad rows" in out and "nothing imported" in out
    assert await count(engine, learners) == 0
    assert await count(engine, enrollments) == 0


def test_a_missing_column_is_reported_on_the_header_line() -> None:
    parsed = parse_csv(io.StringIO("name,channel,locale\nAmina,sms,sw\n"), file="x.csv")
    assert [str(error) for error in parsed.errors] == ["x.csv:1: phone: missing column"]
    assert parsed.rows == []


def test_an_unknown_locale_region_falls_back_to_its_shipped_language() -> None:
    parsed = parse_csv(io.StringIO(GOOD), file="x.csv")
    assert parsed.errors == []
    assert [row.locale for row in parsed.rows] == ["sw", "fr", "en", "pt"]
    assert [row.address for row in parsed.rows] == [
        "+254712345678",
        "+221771234567",
        "123456789",
        "+254712345679",
    ]


def test_numbers_without_country_code_need_a_default_region() -> None:
    text = "name,phone,channel,locale\nAmina,0712 345 678,sms,sw\n"
    without = parse_csv(io.StringIO(text), file="x.csv")
    assert [(e.line, e.field) for e in without.errors] == [(2, "phone")]
    assert "--default-region" in without.errors[0].message
    with_region = parse_csv(io.StringIO(text), file="x.csv", default_region="KE")
    assert with_region.errors == []
    assert with_region.rows[0].address == "+254712345678"


async def test_import_enrols_everyone_with_their_time_zone(
    cli: Cli, engine: AsyncEngine, staff: Staff, tmp_path: Path
) -> None:
    result = await cli(
        "cohort",
        "import",
        str(staff.toms_cohort.id),
        str(write(tmp_path, GOOD)),
        user="tom@example.org",
    )
    assert result.exit_code == 0, result.output
    assert "4 learners created" in result.output and "4 enrolled" in result.output
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    learners.c.name,
                    learners.c.channel,
                    learners.c.locale,
                    learners.c.time_zone,
                    learners.c.status,
                ).order_by(learners.c.id)
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("Amina Njeri", "sms", "sw", "Africa/Nairobi", "active"),  # the number's country
        ("Awa Diop", "whatsapp", "fr", "Africa/Dakar", "active"),  # the number's country
        ("Dan", "telegram", "en", "Africa/Nairobi", "active"),  # a chat id: the cohort's
        ("Paula", "sms", "pt", "Europe/Lisbon", "active"),  # the CSV's
    ]
    assert await count(engine, events, events.c.type == EventType.ENROLLED.value) == 4


async def test_skip_invalid_imports_the_valid_rows_and_reports_the_others(
    cli: Cli, engine: AsyncEngine, staff: Staff, tmp_path: Path
) -> None:
    csv_file = write(tmp_path, GOOD + "Bad,+2547,sms,en,\n")
    result = await cli(
        "cohort",
        "import",
        staff.toms_cohort.join_code,
        str(csv_file),
        "--skip-invalid",
        user="tom@example.org",
    )
    assert result.exit_code == 0, result.output
    assert f"{csv_file}:6: phone:" in result.output
    assert "1 bad row skipped" in result.output  # ngettext: one row, not "1 bad rows"
    assert await count(engine, learners) == 4
    assert await count(engine, enrollments) == 4


async def test_reimport_keeps_stop_and_own_settings_and_never_enrols_twice(
    engine: AsyncEngine, staff: Staff
) -> None:
    rows = parse_csv(io.StringIO(GOOD)).rows
    await import_learners(engine, staff.toms_cohort, rows)
    async with engine.begin() as conn:
        await conn.execute(
            learners.update()
            .where(learners.c.address == "+254712345678")
            .values(status=LearnerStatus.STOPPED.value, locale="en")
        )
        # A learner who never said their language: the CSV may fill it in.
        await conn.execute(
            learners.update().where(learners.c.address == "+221771234567").values(locale=None)
        )
    changed = parse_csv(io.StringIO(GOOD.replace(",sw,", ",ar,").replace(",fr,", ",sw,"))).rows
    result = await import_learners(engine, staff.toms_cohort, changed, batch_size=3)
    assert (result.created, result.enrolled, result.already_enrolled) == (0, 0, 4)
    assert result.updated == 1
    async with engine.connect() as conn:
        state = dict(
            (row.address, (row.status, row.locale))
            for row in await conn.execute(
                select(learners.c.address, learners.c.status, learners.c.locale)
            )
        )
    assert state["+254712345678"] == ("stopped", "en")  # STOP and chosen language kept
    assert state["+221771234567"] == ("active", "sw")  # only the empty field filled
    assert await count(engine, enrollments) == 4
    assert await count(engine, events, events.c.type == EventType.ENROLLED.value) == 4


async def test_the_same_learners_join_a_second_cohort(engine: AsyncEngine, staff: Staff) -> None:
    rows = parse_csv(io.StringIO(GOOD)).rows
    await import_learners(engine, staff.toms_cohort, rows)
    result = await import_learners(engine, staff.unas_cohort, rows)
    assert (result.created, result.enrolled) == (0, 4)
    assert await count(engine, learners) == 4
    assert await count(engine, enrollments) == 8


async def test_a_long_import_goes_in_batches_with_progress(
    engine: AsyncEngine, staff: Staff
) -> None:
    lines = ["name,phone,channel,locale"] + [
        f"Learner {n},+2547{n:08d},sms,en" for n in range(10_000, 10_250)
    ]
    rows = parse_csv(io.StringIO("\n".join(lines))).rows
    progress: list[int] = []
    result = await import_learners(
        engine, staff.toms_cohort, rows, on_progress=progress.append, batch_size=100
    )
    assert progress == [100, 100, 50]
    assert (result.created, result.enrolled) == (250, 250)


def test_a_cell_over_the_csv_size_limit_is_named_by_file_and_line(tmp_path: Path) -> None:
    # Before: `_csv.Error: field larger than field limit (131072)` and a traceback.
    opened = GOOD + '"Open quote,+254712345670,sms,en,\n' + "x" * 200_000 + "\n"
    parsed = read_csv(write(tmp_path, opened))
    [error] = parsed.errors
    assert (error.line, error.field) == (6, "file")
    assert "longer than 131,072 characters (is a quote left open?)" in error.message
    assert str(error).startswith(f"{tmp_path / 'learners.csv'}:")


def test_a_header_over_the_size_limit_is_line_one(tmp_path: Path) -> None:
    [error] = read_csv(write(tmp_path, "n" * 200_000 + "\n")).errors
    assert (error.line, error.field) == (1, "file")


async def test_nul_bytes_and_over_long_names_are_refused_before_the_database(
    cli: Cli, engine: AsyncEngine, staff: Staff, tmp_path: Path
) -> None:
    # Before: PostgreSQL refused the insert (NUL in text; varchar(200)) with a traceback.
    csv_file = write(
        tmp_path,
        "name,phone,channel,locale\n"
        "Ami\x00na,+254712345678,sms,sw\n"
        f"{'N' * 201},+254712345679,sms,sw\n"
        f"{'N' * 200},+254712345670,sms,sw\n",
    )
    result = await cli(
        "cohort", "import", staff.toms_cohort.join_code, str(csv_file), user="tom@example.org"
    )
    assert result.exit_code == 1, result.output
    assert f"{csv_file}:2: name: contains a NUL byte" in result.output
    assert f"{csv_file}:3: name: longer than 200 characters (201)" in result.output
    assert "Traceback" not in result.output
    assert await count(engine, learners) == 0
