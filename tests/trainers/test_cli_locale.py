"""The trainer commands speak LEARNBOT_CLI_LOCALE, else the environment's language, else English."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.i18n import FSI, PDI, SHIPPED_LOCALES, UiCatalogs
from bot.store.tables import enrollments, learners
from bot.trainers.importer import parse_csv
from bot.trainers.text import CliUi, cli_locale, cli_ui, format_eta
from tests.store.rows import insert_enrollment, insert_learner
from tests.trainers.conftest import (
    CHANNELS_ON,
    LESSON,
    LOCALE_VARIABLES,
    ROOT,
    Cli,
    Staff,
    count,
)

BAD_CSV = (
    "name,phone,channel,locale\n"
    "Amina,+254712345678,sms,sw\n"  # line 2: fine
    "Bad Phone,+2547,sms,en\n"  # line 3
    "Fax,+254712345670,fax,en\n"  # line 4
)


@pytest.fixture
def no_locale(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment that names no language, whatever the machine's."""
    for name in LOCALE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def enrol(engine: AsyncEngine, cohort_id: int, learners_count: int) -> None:
    async with engine.begin() as conn:
        for _ in range(learners_count):
            learner = await insert_learner(conn, channel="whatsapp")
            await insert_enrollment(conn, learner["id"], cohort_id)


# --- which language --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "en"),
        ({"LANG": "es_ES.UTF-8"}, "es"),
        ({"LANG": "pt_BR.UTF-8"}, "pt"),  # a region we do not ship: its language
        ({"LANG": "de_DE.UTF-8"}, "en"),  # a language we do not ship: English
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LC_ALL": "C", "LANG": "fr_FR.UTF-8"}, "en"),  # LC_ALL wins, as in gettext
        ({"LC_MESSAGES": "sw_KE.UTF-8", "LANG": "fr_FR.UTF-8"}, "sw"),
        ({"LANGUAGE": "de:ar", "LANG": "fr_FR.UTF-8"}, "ar"),  # LANGUAGE is a list
        ({"LC_CTYPE": "C.UTF-8", "LANG": "fr_FR.UTF-8"}, "fr"),  # LC_CTYPE is no language
    ],
)
def test_the_environment_picks_a_shipped_locale(
    no_locale: pytest.MonkeyPatch, environment: dict[str, str], expected: str
) -> None:
    for name, value in environment.items():
        no_locale.setenv(name, value)
    assert cli_locale(None, SHIPPED_LOCALES) == expected


def test_the_setting_wins_over_the_environment(no_locale: pytest.MonkeyPatch) -> None:
    no_locale.setenv("LANG", "es_ES.UTF-8")
    assert cli_locale("fr_CA", SHIPPED_LOCALES) == "fr"
    assert cli_locale("de", SHIPPED_LOCALES) == "en"


def test_arabic_counts_take_their_six_forms() -> None:
    ui = cli_ui(UiCatalogs(ROOT / "locales"), "ar")
    forms = {
        n: ui.ngettext("%(count)s lesson", "%(count)s lessons", n, count=n).split(PDI)[1]
        for n in (0, 1, 2, 3, 11, 100)
    }
    assert len(set(forms.values())) == 4  # zero, one and other share "درس" in this noun
    assert forms[2] == " درسان" and forms[3] == " دروس" and forms[11] == " درسًا"
    assert ui.number(1000) == f"{FSI}1,000{PDI}"


def test_eta_and_csv_errors_in_french() -> None:
    ui = cli_ui(UiCatalogs(ROOT / "locales"), "fr")
    assert format_eta(ui, 3725) == "1 h 02 min"  # 1 h 2 min 5 s
    assert format_eta(CliUi.english(), 200) == "3 min 20 s"
    parsed = parse_csv(BAD_CSV.splitlines(keepends=True), file="l.csv")
    assert [error.render(ui) for error in parsed.errors] == [
        "l.csv:3: phone: '+2547' n'est pas un numéro de téléphone "
        "(commencez par +<indicatif du pays> ou passez --default-region)",
        "l.csv:4: channel: canal inconnu 'fax' ; valeurs possibles : sms, whatsapp, telegram",
    ]
    assert str(parsed.errors[0]) == (
        "l.csv:3: phone: '+2547' is not a phone number "
        "(start with +<country code> or pass --default-region)"
    )


# --- the commands ------------------------------------------------------------------------------


async def test_import_errors_in_french_keep_line_and_column(
    cli: Cli, engine: AsyncEngine, staff: Staff, tmp_path: Path
) -> None:
    csv_file = tmp_path / "l.csv"
    csv_file.write_text(BAD_CSV, encoding="utf-8")
    result = await cli(
        "cohort", "import", staff.toms_cohort.join_code, str(csv_file),
        user="tom@example.org", locale="fr",
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"{csv_file}:3: phone: '+2547' n'est pas un numéro de téléphone (" in result.output
    assert f"{csv_file}:4: channel: canal inconnu 'fax'" in result.output
    assert f"2 lignes erronées dans {csv_file} : rien n'a été importé" in result.output
    assert "--skip-invalid" in result.output
    assert await count(engine, learners) == 0 and await count(engine, enrollments) == 0


async def test_import_summary_in_spanish_from_lang(cli: Cli, staff: Staff, tmp_path: Path) -> None:
    csv_file = tmp_path / "l.csv"
    csv_file.write_text(BAD_CSV, encoding="utf-8")
    result = await cli(
        "cohort", "import", staff.toms_cohort.join_code, str(csv_file), "--skip-invalid",
        user="tom@example.org", env={"LANG": "es_ES.UTF-8"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{csv_file}:3: phone: '+2547' no es un número de teléfono (" in result.output
    assert "1 participante creado, 0 completados, 1 inscrito, 0 ya inscritos" in result.output
    assert "2 filas erróneas omitidas" in result.output


async def test_push_summaries_in_swahili_with_plurals(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    await enrol(engine, staff.toms_cohort.id, 2)
    await enrol(engine, staff.unas_cohort.id, 1)
    args = (LESSON, "--no-wait", "--at", "2099-01-01 09:00")
    toms = await cli(
        "cohort",
        "push",
        staff.toms_cohort.join_code,
        *args,
        user="tom@example.org",
        locale="sw",
        env=CHANNELS_ON,
    )
    assert toms.exit_code == 0, toms.output
    assert f"utumaji 1: {LESSON} kwa wanafunzi 2 wa kundi Tom's group (2 whatsapp)" in toms.output
    assert "tarehe 1 Jan 2099 09:00, muda unaokadiriwa wa kutuma:" in toms.output  # Nairobi time
    unas = await cli(
        "cohort",
        "push",
        staff.unas_cohort.join_code,
        *args,
        user="una@example.org",
        locale="sw",
        env=CHANNELS_ON,
    )
    assert f"utumaji 2: {LESSON} kwa mwanafunzi 1 wa kundi Una's group" in unas.output
    cancelled = await cli("cohort", "push", "--cancel", "1", user="tom@example.org", locale="sw")
    assert cancelled.exit_code == 0, cancelled.output
    assert (
        "utumaji 1 umeghairiwa: 0/2 yametumwa, 0 yameshindwa, 0 yanasubiri, 2 yameghairiwa"
        in cancelled.output
    )


async def test_a_role_refusal_in_arabic_isolates_names(cli: Cli, staff: Staff) -> None:
    result = await cli("cohort", "show", staff.unas_cohort.join_code, user="tom@example.org",
                       locale="ar")  # fmt: skip
    assert result.exit_code == 1
    assert (
        f"{FSI}Tom <tom@example.org>{PDI} مدرّب ولا يحق له التصرف في المجموعة "
        f'{FSI}"Una\'s group"{PDI}: فهي تابعة لمدرّب آخر' in result.output
    )


async def test_show_in_spanish_from_lang_and_english_by_default(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    await enrol(engine, staff.toms_cohort.id, 3)
    code = staff.toms_cohort.join_code
    spanish = await cli("cohort", "show", code, user="tom@example.org",
                        env={"LANG": "es_ES.UTF-8"})  # fmt: skip
    assert spanish.exit_code == 0, spanish.output
    lines = [line.split() for line in spanish.output.splitlines()]
    assert ["grupo", "1:", "Tom's", "group", "(activo)"] in lines
    assert ["responsable:", "Tom"] in lines and ["zona", "horaria:", "Africa/Nairobi"] in lines
    schedule = next(line for line in lines if line[:1] == ["calendario:"])
    assert schedule[1:6] == ["mon,tue,wed,thu,fri", "09:00,", "a", "su", "ritmo,"]
    assert ["participantes:", "3"] in lines and ["activo", "3"] in lines
    english = await cli("cohort", "show", code, user="tom@example.org")
    assert "cohort 1: Tom's group (active)" in english.output
    assert "  schedule:   mon,tue,wed,thu,fri 09:00, self_paced" not in english.output
    assert "  schedule:   mon,tue,wed,thu,fri 09:00, self-paced" in english.output


async def test_a_bad_cli_locale_is_named_and_changes_nothing(cli: Cli, staff: Staff) -> None:
    result = await cli("cohort", "pause", staff.toms_cohort.join_code, user="tom@example.org",
                       locale="fr-!!")  # fmt: skip
    assert result.exit_code == 1
    assert "LEARNBOT_CLI_LOCALE: unknown locale 'fr-!!'" in result.output
    again = await cli("cohort", "pause", staff.toms_cohort.join_code, user="tom@example.org")
    assert "(it already was)" not in again.output
