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
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import Settings
from bot.dialogue.keywords import Command, help_word
from bot.domain import ChannelName, InboundMessage
from bot.runtime import build_runtime, ensure_demo_cohort

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

    output = tmp_path / "events.csv"
    result = CliRunner().invoke(main, ["export", "events", "--output", str(output)])
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

    default = CliRunner().invoke(main, ["export", "events"])
    everything = CliRunner().invoke(main, ["export", "events", "--include-sandbox"])

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
    assert "lang:ar" in payloads


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
