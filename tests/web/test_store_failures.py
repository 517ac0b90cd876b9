"""Webhooks on a store that refuses writes: a full disk, a SQLite page limit, a read-only volume.

The whole app (create_app with the real Telegram and Twilio routes, the real Dialogue on a
SQLite file, replies into the outbox) takes Telegram updates and signed SMS while the disk
under its database fills up: each is either stored (2xx) or answered 503; once space is back
every 503'd request is posted again, as the providers would, and each update and MessageSid
is stored exactly once, its replies in the outbox once. The disk is a real tmpfs (root only,
as in the sandbox and CI); `PRAGMA max_page_count` makes SQLite refuse the same way
(SQLITE_FULL, "database or disk is full") where mounting is not allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from twilio.request_validator import RequestValidator

from bot.channels.base import Channel
from bot.channels.sandbox import SandboxChannel
from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.dialogue import Dialogue
from bot.dialogue.runner import SqliteRunner
from bot.domain import ChannelName, OutboundMessage
from bot.i18n import UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import load_courses
from bot.runtime import DEMO_JOIN_CODE, OUTBOX_CHANNELS, _pathway_order
from bot.store import migrate
from bot.store.availability import HEARTBEAT_CHANNEL
from bot.store.db import create_engine
from bot.store.tables import deliveries, learners, processed_inbound
from bot.web.app import create_app
from bot.web.telegram import SECRET_HEADER, telegram_routes
from bot.web.twilio import twilio_routes
from tests.fakes.telegram import FakeBotApi, text_update

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-token_for_tests"
TOKEN = "test-auth-token"
PUBLIC_URL = "https://learnbot.example.org"
SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"
# Room for the store, its WAL and the ballast; once the ballast is gone the retries need what
# it held. 8 MB was too little once the console's indexes (0012) made each JOIN write more.
DISK_BYTES = 16 * 1024 * 1024


def mount_tmpfs(where: Path, size: int) -> str | None:
    """Mount a tmpfs of `size` bytes at `where`; the reason it could not be, or None."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else f"mount -t tmpfs failed: {done.stderr.strip()}"


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a ballast file until the file system is full: its path."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        # Big chunks first, then smaller ones: the last few pages take only small writes.
        for size in (1 << 20, 1 << 16, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return ballast


@dataclass
class Request:
    """One webhook request as a provider sends it, kept to be sent again."""

    kind: str  # "telegram" or "sms"
    provider_id: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    answers: list[int] = field(default_factory=list)


@dataclass
class App:
    """The app on a SQLite file, and the providers' side of its webhooks."""

    http: httpx.AsyncClient
    engine: AsyncEngine
    dialogue: Dialogue
    validator: RequestValidator

    def telegram(self, update_id: int, chat_id: int, text: str) -> Request:
        return Request(
            "telegram",
            f"tg:{update_id}",
            "/webhooks/telegram",
            {SECRET_HEADER: SECRET},
            json=text_update(update_id, chat_id, text),
        )

    def sms(self, sid: str, sender: str, text: str) -> Request:
        form = {"MessageSid": sid, "From": sender, "To": "+15550001111", "Body": text}
        signature = self.validator.compute_signature(PUBLIC_URL + SMS_PATH, form)
        return Request("sms", sid, SMS_PATH, {"X-Twilio-Signature": signature}, form=form)

    def status(self, sid: str, status: str) -> Request:
        form = {"MessageSid": sid, "MessageStatus": status, "To": "+254711000001"}
        signature = self.validator.compute_signature(PUBLIC_URL + STATUS_PATH, form)
        return Request("status", sid, STATUS_PATH, {"X-Twilio-Signature": signature}, form=form)

    async def send(self, request: Request) -> int:
        headers = request.headers
        if request.json is not None:
            response = await self.http.post(request.path, json=request.json, headers=headers)
        else:
            response = await self.http.post(request.path, data=request.form, headers=headers)
        if response.status_code >= 500:
            assert response.status_code == 503, response.text
            assert response.text == "store unavailable, retry later"
            assert response.headers["Retry-After"].isdigit()
        request.answers.append(response.status_code)
        return response.status_code

    async def stored(self) -> dict[str, int]:
        """How many times each provider id is stored (the heartbeat left out)."""
        query = (
            select(processed_inbound.c.provider_id, func.count())
            .where(processed_inbound.c.channel != HEARTBEAT_CHANNEL)
            .group_by(processed_inbound.c.provider_id)
        )
        async with self.engine.connect() as conn:
            return {row[0]: row[1] for row in await conn.execute(query)}

    async def replies_by_address(self) -> dict[str, int]:
        query = (
            select(learners.c.address, func.count(deliveries.c.id))
            .join(deliveries, deliveries.c.learner_id == learners.c.id)
            .where(deliveries.c.kind == "reply")
            .group_by(learners.c.address)
        )
        async with self.engine.connect() as conn:
            return {row[0]: row[1] for row in await conn.execute(query)}

    async def health(self) -> httpx.Response:
        return await self.http.get("/healthz")


@contextlib.asynccontextmanager
async def running_app(database: Path, *, prepare: bool = True) -> AsyncIterator[App]:
    """Migrate the database, create the DEMO cohort, and serve the webhooks in-process."""
    url = f"sqlite+aiosqlite:///{database}"
    if prepare:
        await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    courses = load_courses(ROOT / "lessons")
    content = load_translations(courses.values(), ROOT / "locales")
    ui = UiCatalogs(ROOT / "locales")
    dialogue = Dialogue(engine, courses, content, ui, outbox_channels=OUTBOX_CHANNELS)
    if prepare:
        await dialogue.create_cohort(
            name="Demo cohort", join_code=DEMO_JOIN_CODE, course_ids=_pathway_order(courses)
        )
    api = FakeBotApi()
    async with api.running() as base_url:
        settings = Settings(
            telegram_bot_token=api.token,
            telegram_webhook_secret=SECRET,
            telegram_api_url=base_url,
            public_url=PUBLIC_URL,
            twilio_account_sid="AC" + "1" * 32,
            twilio_auth_token=TOKEN,
            twilio_sms_from="+15550001111",
        )
        channel = TelegramChannel.from_settings(settings)
        channels: dict[ChannelName, Channel] = {
            ChannelName.SANDBOX: SandboxChannel(),
            ChannelName.TELEGRAM: channel,
        }

        async def on_replies(replies: Any) -> None:
            # Outbox channels return no replies; an apology sent directly would show here.
            assert list(cast(list[OutboundMessage], replies)) == []

        routes = [
            *telegram_routes(
                settings=settings,
                dialogue=dialogue,
                application_or_channel=channel,
                on_replies=on_replies,
            ),
            *twilio_routes(
                settings=settings, dialogue=dialogue, engine=engine, on_replies=on_replies
            ),
        ]
        app = create_app(
            dialogue=dialogue,
            channels=channels,
            engine=engine,
            ui=ui,
            sandbox_enabled=False,
            extra_routes=routes,
        )
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield App(http, engine, dialogue, RequestValidator(TOKEN))
        finally:
            await channel.aclose()
            await dialogue.aclose()
            await engine.dispose()


def traffic(app: App, wave: int, count: int) -> list[Request]:
    """`count` learners joining, half on Telegram, half by SMS (ids unique per wave)."""
    requests: list[Request] = []
    for n in range(count // 2):
        requests.append(app.telegram(wave * 1000 + n, 5_550_000 + wave * 1000 + n, "/start DEMO"))
        sid = f"SM{wave:04d}{n:028d}"
        requests.append(app.sms(sid, f"+2547{wave:02d}{n:06d}", "JOIN DEMO"))
    return requests


@dataclass
class Figures:
    tried: int = 0
    ok: int = 0
    refused: int = 0
    replayed: int = 0
    duplicates: int = 0


async def exercise(
    app: App, make_full: Callable[[], Awaitable[None]], make_free: Callable[[], None]
) -> Figures:
    """Traffic before, during and after a full store; the figures for RELIABILITY.md."""
    figures = Figures()
    before = traffic(app, 1, 20)
    assert {await app.send(r) for r in before} == {200}
    reference = await app.replies_by_address()  # what one JOIN leaves in the outbox
    assert len(set(reference.values())) == 1
    replies_per_join = next(iter(reference.values()))

    during = traffic(app, 2, 80)
    for start in range(0, len(during), 10):  # ten at a time, as webhooks arrive
        sends = [app.send(r) for r in during[start : start + 10]]
        if start == 20:  # mid-run: the store fills up while these ten are being handled
            await asyncio.gather(make_full(), *sends)
        else:
            await asyncio.gather(*sends)
    stored = await app.stored()
    for request in during:
        [status] = request.answers
        assert status in (200, 503)
        # 2xx means committed; a 503 left nothing behind.
        assert (request.provider_id in stored) == (status == 200), request
    figures.tried = len(during)
    figures.ok = sum(r.answers == [200] for r in during)
    figures.refused = sum(r.answers == [503] for r in during)
    assert figures.refused > 0, "the full store refused nothing: the test tested nothing"
    health = await app.health()
    assert health.status_code == 503
    assert health.json()["database"] == "unwritable"
    assert "disk full" in health.json()["reason"]

    make_free()
    # The providers retry what got a 5xx (and may retry a 2xx, e.g. after a timeout).
    retries = [r for r in during if r.answers == [503]] + during[:4]
    for request in retries:
        assert await app.send(request) == 200
    figures.replayed = sum(r.answers[0] == 503 and r.answers[-1] == 200 for r in during)
    stored = await app.stored()
    everything = before + during
    assert sorted(stored) == sorted(r.provider_id for r in everything)
    figures.duplicates = sum(n - 1 for n in stored.values())
    assert figures.duplicates == 0
    replies = await app.replies_by_address()
    assert len(replies) == len(everything)
    assert set(replies.values()) == {replies_per_join}  # each JOIN's replies queued once
    async with app.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(learners)) == len(everything)
    assert (await app.health()).json() == {"status": "ok", "database": "ok"}
    return figures


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    reason = mount_tmpfs(where, DISK_BYTES)
    if reason is not None:
        pytest.skip(f"no tmpfs for the full-disk test ({reason}); the page-limit test runs")
    try:
        yield where
    finally:
        unmount(where)


async def test_a_full_disk_loses_no_webhook(tmpfs: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with running_app(tmpfs / "learnbot.db") as app:
        ballast: list[Path] = []

        async def make_full() -> None:  # in a thread: the ballast grows while webhooks run
            ballast.append(await asyncio.to_thread(fill, tmpfs))

        figures = await exercise(app, make_full, lambda: ballast.pop().unlink())
    print(f"full disk (tmpfs): {figures}")
    assert_said_once(caplog)


def set_page_limit(app: App, pages: int | None) -> None:
    """PRAGMA max_page_count on the dialogue's connection: SQLITE_FULL past it."""
    runner = app.dialogue.runner
    assert isinstance(runner, SqliteRunner) and runner._inline is not None
    driver = cast(sqlite3.Connection, runner._inline.connection.driver_connection)
    if pages is None:
        driver.execute("PRAGMA max_page_count=4294967294")
    else:
        current = driver.execute("PRAGMA page_count").fetchone()[0]
        driver.execute(f"PRAGMA max_page_count={current + pages}")


async def test_a_page_limit_loses_no_webhook(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running_app(tmp_path / "learnbot.db") as app:

        async def make_full() -> None:
            set_page_limit(app, 2)

        figures = await exercise(app, make_full, lambda: set_page_limit(app, None))
    print(f"page limit: {figures}")
    assert_said_once(caplog)


def assert_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """The outage was logged once when it began and once when it ended, no traceback."""
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.store.availability"]
    webhooks = [line for line in lines if line.startswith("webhooks:")]
    assert len(webhooks) == 2, lines
    assert "refuses writes (disk full)" in webhooks[0]
    assert "takes writes again" in webhooks[1]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


# --- a read-only store ----------------------------------------------------------------------


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)


async def test_a_read_only_store_answers_503_and_healthz_says_why(
    tmpfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmpfs / "learnbot.db"
    async with running_app(database):
        pass  # migrated, with its DEMO cohort; every connection closed again
    remount(tmpfs, "ro")
    try:
        async with running_app(database, prepare=False) as app:
            telegram = await app.send(app.telegram(1, 5_550_001, "/start DEMO"))
            sms = await app.send(app.sms("SM" + "7" * 32, "+254711000001", "JOIN DEMO"))
            status = await app.send(app.status("SM" + "8" * 32, "delivered"))
            health = await app.health()
    finally:
        remount(tmpfs, "rw")
    assert (telegram, sms, status) == (503, 503, 503)
    assert health.status_code == 503
    assert health.json()["database"] in ("unwritable", "unreachable"), health.json()
    # SQLite cannot even open a WAL database read-only without its -shm file: either way, why.
    assert health.json()["reason"] in ("read-only", "cannot open the database file")
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
