"""The `learnbot` command line as a trainer or operator uses it: demo, db, export, serve."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from bot.cli import main
from bot.config import Settings
from bot.dialogue.keywords import Command, help_word
from bot.domain import ChannelName, InboundMessage
from bot.runtime import build_runtime, ensure_demo_cohort
from bot.store.db import create_engine
from tests.fakes.telegram import FakeBotApi

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A working directory with its own SQLite store and the shipped courses."""
    values = {
        "LEARNBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'learnbot.db'}",
        "LEARNBOT_LESSONS_DIR": str(ROOT / "lessons"),
        "LEARNBOT_LOCALES_DIR": str(ROOT / "locales"),
        "LEARNBOT_SECRET_KEY": "a-test-secret-key-of-some-length",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return values


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("ar", "اختر لغتك"), ("sw", "Chagua lugha yako")],
)
def test_demo_prints_a_translated_transcript(
    env: dict[str, str], locale: str, expected: str
) -> None:
    result = CliRunner().invoke(main, ["demo", "--locale", locale])
    assert result.exit_code == 0, result.output
    assert expected in result.output
    # Joined, took the pre-assessment and lesson 1 with a wrong then a right answer, and
    # asked for progress: the transcript ends with the progress reply.
    learner_lines = [line for line in result.output.splitlines() if line.startswith("> learner:")]
    assert len(learner_lines) >= 12
    assert learner_lines[-1] == f"> learner: {help_word(Command.PROGRESS, locale)}"


def test_demo_refuses_an_unknown_locale(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["demo", "--locale", "xx"])
    assert result.exit_code == 2
    assert "--locale" in result.output


def test_a_wrong_setting_stops_the_command_and_names_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEARNBOT_DATABASE_URL", "mysql://nowhere/db")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "LEARNBOT_DATABASE_URL" in result.output


def test_db_upgrade_names_a_database_it_cannot_open(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "LEARNBOT_DATABASE_URL", f"postgresql+asyncpg://u@127.0.0.1:{_free_port()}/x"
    )
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: LEARNBOT_DATABASE_URL: cannot open the database: ")
    assert len(result.output.splitlines()) == 1


def test_db_upgrade_creates_the_schema(env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "learnbot.db").stat().st_size > 0


async def _join_demo_by_sms(
    settings: Settings, address: str, channel: ChannelName = ChannelName.SMS
) -> None:
    runtime = await build_runtime(settings)
    try:
        await ensure_demo_cohort(runtime)
        for text in ("JOIN DEMO", "2"):
            await runtime.dialogue.handle(
                InboundMessage(channel=channel, address=address, text=text)
            )
    finally:
        await runtime.close()


def test_export_events_writes_pseudonymous_csv(env: dict[str, str], tmp_path: Path) -> None:
    asyncio.run(_join_demo_by_sms(Settings.from_env(env_file=None), "+254712345678"))
    added = CliRunner().invoke(main, ["user", "add", "Unit", "--email", ADMIN, "--role", "admin"])
    assert added.exit_code == 0, added.output

    output = tmp_path / "events.csv"
    result = CliRunner().invoke(
        main, ["export", "events", "--output", str(output)], env={"LEARNBOT_USER": ADMIN}
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8"))))
    assert {row["event"] for row in rows} >= {"enrolled", "language_changed"}
    assert "+254712345678" not in output.read_text(encoding="utf-8")
    assert len({row["learner"] for row in rows}) == 1
    assert not (tmp_path / "events.csv.partial").exists()


def test_export_events_leaves_the_sandbox_out_unless_asked(
    env: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings.from_env(env_file=None)
    asyncio.run(_join_demo_by_sms(settings, "+254712345678"))
    asyncio.run(_join_demo_by_sms(settings, "web-0123456789abcdef", ChannelName.SANDBOX))

    added = CliRunner().invoke(main, ["user", "add", "Unit", "--email", ADMIN, "--role", "admin"])
    assert added.exit_code == 0, added.output
    admin = {"LEARNBOT_USER": ADMIN}
    default = CliRunner().invoke(main, ["export", "events"], env=admin)
    everything = CliRunner().invoke(main, ["export", "events", "--include-sandbox"], env=admin)

    assert default.exit_code == 0 and everything.exit_code == 0, default.output
    channels = {row["channel"] for row in csv.DictReader(io.StringIO(default.stdout))}
    assert channels == {"sms"}
    rows = list(csv.DictReader(io.StringIO(everything.stdout)))
    assert {row["channel"] for row in rows} == {"sms", "sandbox"}
    assert len({row["learner"] for row in rows}) == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`learnbot serve` with the demo cohort, as `make run` starts it."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env={**os.environ, **env, "LEARNBOT_DEMO": "1"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"serve exited early:\n{output}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("serve did not answer /healthz within 30 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_serve_answers_health_and_the_sandbox_demo_cohort(served: str) -> None:
    health = httpx.get(f"{served}/healthz", timeout=5)
    assert health.json() == {"status": "ok", "database": "ok"}
    page = httpx.get(f"{served}/sandbox?lang=fr", timeout=5)
    assert page.status_code == 200 and 'lang="fr"' in page.text

    reply = httpx.post(
        f"{served}/sandbox/messages",
        json={"address": "browser-test-0001", "text": "JOIN DEMO"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    payloads = [b["payload"] for m in reply.json()["messages"] for b in m.get("buttons", [])]
    assert "p:lang:lang:ar" in payloads  # the language menu names its prompt


def test_serve_refuses_a_wrong_setting(env: dict[str, str], tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={**os.environ, **env, "LEARNBOT_DEFAULT_LOCALE": "xx_XX"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0
    assert "LEARNBOT_DEFAULT_LOCALE" in process.stderr


def _serve_fails(env: dict[str, str], cwd: Path, *args: str, **overrides: str) -> str:
    """Run the real `learnbot serve`; assert it stops with one clean line and return that line."""
    process = subprocess.run(
        [sys.executable, "-m", "bot", "serve", *args],
        env={**os.environ, **env, **overrides},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0, process.stderr
    assert "Traceback" not in process.stderr
    lines = process.stderr.splitlines()
    assert len(lines) == 1, process.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LEARNBOT_PORT", "²"),  # a Unicode digit: "²".isdigit() is True
        ("LEARNBOT_SMS_MAX_SEGMENTS", "²"),
        ("LEARNBOT_MISFIRE_GRACE", "99999999999d"),  # timedelta overflow
        ("TWILIO_SMS_MPS", "inf"),  # was accepted, then OverflowError every second
        ("TWILIO_WHATSAPP_MPS", "inf"),
        ("LEARNBOT_DEFAULT_LOCALE", "de"),  # a real locale, but not shipped
    ],
)
def test_serve_refuses_a_bad_setting_in_one_line(
    env: dict[str, str], tmp_path: Path, name: str, value: str
) -> None:
    line = _serve_fails(env, tmp_path, **{name: value})
    assert line.startswith(f"Error: {name}: ")


def test_serve_refuses_the_development_secret_key_outside_a_demo(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEARNBOT_SECRET_KEY")
    without_key = {name: value for name, value in env.items() if name != "LEARNBOT_SECRET_KEY"}
    line = _serve_fails(without_key, tmp_path, LEARNBOT_PUBLIC_URL="http://bot.example.org")
    assert line.startswith("Error: LEARNBOT_SECRET_KEY: still the development key")


def test_serve_refuses_a_sqlite_file_in_a_missing_folder(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'no-such-folder' / 'learnbot.db'}"
    line = _serve_fails(env, tmp_path, LEARNBOT_DATABASE_URL=url)
    assert line.startswith("Error: LEARNBOT_DATABASE_URL: the folder ")
    assert not (tmp_path / "no-such-folder").exists()


def test_serve_refuses_a_read_only_sqlite_database(env: dict[str, str], tmp_path: Path) -> None:
    from bot.store.migrate import upgrade

    upgrade(env["LEARNBOT_DATABASE_URL"])
    # Root ignores file modes, so the database is opened read-only by its URL, as a
    # read-only mount or a file owned by another user would be.
    path = tmp_path / "learnbot.db"
    url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    line = _serve_fails(env, tmp_path, LEARNBOT_DATABASE_URL=url)
    assert line == (
        "Error: LEARNBOT_DATABASE_URL: cannot open the database: "
        "attempt to write a readonly database"
    )


def test_serve_refuses_a_postgresql_server_that_refuses_the_connection(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = f"postgresql+asyncpg://learnbot:pg-secret@127.0.0.1:{_free_port()}/learnbot"
    line = _serve_fails(env, tmp_path, LEARNBOT_DATABASE_URL=url)
    assert line.startswith("Error: LEARNBOT_DATABASE_URL: cannot open the database: ")
    assert "refused" in line and "pg-secret" not in line


@pytest.mark.postgres
async def test_serve_refuses_a_read_only_postgresql_database(
    env: dict[str, str], tmp_path: Path
) -> None:
    import asyncpg  # type: ignore[import-untyped]

    from tests.conftest import _postgres_database

    async with _postgres_database() as url:
        parsed = make_url(url)
        admin = await asyncpg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, database="postgres"
        )
        try:
            await admin.execute(
                f'ALTER DATABASE "{parsed.database}" SET default_transaction_read_only = on'
            )
        finally:
            await admin.close()
        line = await asyncio.to_thread(_serve_fails, env, tmp_path, LEARNBOT_DATABASE_URL=url)
    assert line == (
        "Error: LEARNBOT_DATABASE_URL: the database is read-only (transaction_read_only is on)"
    )


def test_serve_refuses_a_port_already_in_use(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        line = _serve_fails(env, tmp_path, LEARNBOT_PORT=port, LEARNBOT_DEMO="1")
        assert (
            line
            == f"Error: LEARNBOT_PORT: cannot listen on 127.0.0.1:{port}: Address already in use"
        )
        line = _serve_fails(env, tmp_path, "--port", port, LEARNBOT_DEMO="1")
        assert line.startswith("Error: --port: cannot listen on")


ADMIN = "unit@example.org"
TRAINER = "amina@example.org"
OTHER_TRAINER = "juma@example.org"


async def _staff(database_url: str) -> dict[str, int]:
    """An admin and two trainers, each trainer with a cohort of one learner who enrolled."""
    from bot.domain import EventType, Role
    from bot.store.events import EventRow, append_events
    from bot.store.migrate import upgrade
    from bot.store.tables import cohorts
    from bot.trainers.roles import add_user
    from scheduler.schedule import Schedule
    from tests.store.rows import insert_learner

    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    cohort_ids: dict[str, int] = {}
    try:
        async with engine.begin() as conn:
            await add_user(conn, name="Unit", email=ADMIN, role=Role.ADMIN)
            for number, email in enumerate((TRAINER, OTHER_TRAINER), start=1):
                owner = await add_user(conn, name=email, email=email, role=Role.TRAINER)
                result = await conn.execute(
                    cohorts.insert().returning(cohorts.c.id),
                    {
                        "name": f"cohort of {email}",
                        "join_code": f"CODE{number}",
                        "course_ids": ["digital-skills"],
                        "time_zone": "UTC",
                        "pacing": "self_paced",
                        "schedule": Schedule(pacing="self_paced").to_json(),
                        "owner_id": owner.id,
                        "status": "active",
                        "created_at": datetime.now(UTC),
                    },
                )
                cohort_ids[email] = int(result.scalar_one())
                learner = await insert_learner(
                    conn, address=f"+25471234500{number}", profile_role="=1+2"
                )
                await append_events(
                    conn,
                    [
                        EventRow(
                            type=EventType.ENROLLED,
                            learner_key=learner["learner_key"],
                            cohort_id=cohort_ids[email],
                            channel=ChannelName.SMS,
                        )
                    ],
                )
    finally:
        await engine.dispose()
    return cohort_ids


def _export(*args: str, user: str | None = None) -> Result:
    env = {"LEARNBOT_USER": user} if user is not None else {}
    return CliRunner().invoke(main, ["export", "events", *args], env=env)


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.fixture
def staff(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    monkeypatch.delenv("LEARNBOT_USER", raising=False)
    monkeypatch.setenv("LEARNBOT_CLI_LOCALE", "en")
    return asyncio.run(_staff(env["LEARNBOT_DATABASE_URL"]))


def test_export_acts_as_a_user_and_refuses_without_one(staff: dict[str, int]) -> None:
    # Before: raw phone numbers with no LEARNBOT_USER at all.
    line = _one_error_line(_export("--include-addresses"))
    assert "--as EMAIL" in line and "LEARNBOT_USER" in line
    line = _one_error_line(_export("--include-addresses", user="nobody@example.org"))
    assert "no user has the e-mail 'nobody@example.org'" in line


def test_free_text_answers_are_for_admins_only(staff: dict[str, int]) -> None:
    line = _one_error_line(_export("--include-free-text", user=TRAINER))
    assert "only an admin may export the learners' free-text answers" in line

    result = _export("--include-free-text", user=ADMIN)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith(",free_text")


def test_addresses_are_for_admins_only(staff: dict[str, int]) -> None:
    line = _one_error_line(_export("--include-addresses", user=TRAINER))
    assert "only an admin may export the learners' addresses" in line

    result = _export("--include-addresses", user=ADMIN)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # Phone numbers stay exactly as written; a formula typed into a profile is defused.
    assert sorted(row["address"] for row in rows) == ["+254712345001", "+254712345002"]
    assert {row["role"] for row in rows} == {"'=1+2"}


def test_a_trainer_exports_only_their_own_cohorts(staff: dict[str, int]) -> None:
    result = _export(user=TRAINER)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["cohort_id"] for row in rows] == [str(staff[TRAINER])]

    # Before: a trainer exported another trainer's cohort.
    line = _one_error_line(_export("--cohort", str(staff[OTHER_TRAINER]), user=TRAINER))
    assert "may not act on cohort 'cohort of juma@example.org'" in line

    everything = _export(user=ADMIN)
    assert len(list(csv.DictReader(io.StringIO(everything.stdout)))) == 2


def test_export_refusals_speak_the_trainers_language(
    staff: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEARNBOT_CLI_LOCALE", "fr")
    line = _one_error_line(_export("--include-addresses", user=TRAINER))
    assert "seul un administrateur peut" in line and "adresses" in line


def test_an_unwritable_output_is_one_line(staff: dict[str, int], tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "events.csv"
    line = _one_error_line(_export("--output", str(target), user=ADMIN))
    assert line == f"Error: --output: cannot write {target}: No such file or directory"
    (tmp_path / "a-file").write_text("")
    under_a_file = tmp_path / "a-file" / "events.csv"
    line = _one_error_line(_export("--output", str(under_a_file), user=ADMIN))
    assert line == f"Error: --output: cannot write {under_a_file}: Not a directory"
    assert list(tmp_path.glob("**/*.partial")) == []


def _serve_with_telegram(env: dict[str, str], cwd: Path, fake: FakeBotApi, base_url: str) -> str:
    """`learnbot serve` against the fake Bot API until /healthz answers; its whole log."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env={
            **os.environ,
            **env,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_URL": base_url,
            "TELEGRAM_WEBHOOK_SECRET": "webhook-secret_0123456789",
        },
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    return output


@pytest.mark.slow
def test_serve_logs_never_carry_the_bot_token(env: dict[str, str], tmp_path: Path) -> None:
    fake = FakeBotApi()
    with fake.running_in_thread() as base_url:
        log = _serve_with_telegram(env, tmp_path, fake, base_url)
    assert fake.calls_to("getMe"), log
    # Before: "HTTP Request: POST .../bot<token>/getMe" on every Bot API call.
    assert "/bot***/getMe" in log
    assert fake.token not in log and fake.token.split(":")[1] not in log
    assert "webhook-secret_0123456789" not in log
    assert env["LEARNBOT_SECRET_KEY"] not in log


def test_serve_names_a_rejected_token_without_printing_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    fake = FakeBotApi()
    fake.fail_next("getMe", 401, "Unauthorized")
    with fake.running_in_thread() as base_url:
        log = _serve_with_telegram(env, tmp_path, fake, base_url)
    # Before: PTB's "The token `<token>` was rejected by the server." in a traceback.
    assert log.splitlines()[-1] == "Error: TELEGRAM_BOT_TOKEN: Telegram rejected the token"
    assert "Traceback" not in log
    assert fake.token not in log
