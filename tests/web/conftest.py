"""Fixtures for the web app: small UI catalogs, a fake dialogue, an app and its client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.base import Channel
from bot.channels.sandbox import SandboxChannel
from bot.config import Settings
from bot.domain import ChannelName, InboundMessage, OutboundMessage
from bot.i18n import UiCatalogs
from bot.runtime import Runtime, build_runtime, ensure_demo_cohort
from bot.store.db import create_engine
from bot.store.tables import metadata
from bot.web.app import create_app

TRANSLATIONS = {
    "fr": {
        "Send": "Envoyer",
        "Type a message": "Écrivez un message",
        "Try the bot here. Type %(command)s to start the demo course.": (
            "Essayez le bot ici. Tapez %(command)s pour commencer le cours de démonstration."
        ),
    },
    "ar": {
        "Send": "إرسال",
        "Type a message": "اكتب رسالة",
        "Try the bot here. Type %(command)s to start the demo course.": (
            "جرّب البوت هنا. اكتب %(command)s لبدء الدورة التجريبية."
        ),
    },
}


class FakeDialogue:
    """Records what it receives and answers with whatever `reply` returns."""

    def __init__(self) -> None:
        self.received: list[InboundMessage] = []
        self.reply: Callable[[InboundMessage], list[OutboundMessage]] = lambda message: []

    async def handle(self, message: InboundMessage) -> list[OutboundMessage]:
        self.received.append(message)
        return self.reply(message)


@pytest.fixture
def ui(tmp_path: Path) -> UiCatalogs:
    """UI catalogs for en (source), fr and ar, with a few page strings translated."""
    for locale, messages in TRANSLATIONS.items():
        catalog = Catalog(locale=locale, domain="messages")
        for source, translation in messages.items():
            catalog.add(source, translation)
        folder = tmp_path / "locales" / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        with (folder / "messages.po").open("wb") as handle:
            write_po(handle, catalog)
    return UiCatalogs(tmp_path / "locales")


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a SQLite file with the tables and no rows: enough for the health check."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)  # the heartbeat writes a row
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def dialogue() -> FakeDialogue:
    """A dialogue that answers nothing until a test sets `reply`."""
    return FakeDialogue()


@pytest.fixture
def sandbox() -> SandboxChannel:
    """The sandbox channel the app delivers to."""
    return SandboxChannel()


@pytest.fixture
async def client(
    dialogue: FakeDialogue, sandbox: SandboxChannel, sqlite_engine: AsyncEngine, ui: UiCatalogs
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    channels: dict[ChannelName, Channel] = {ChannelName.SANDBOX: sandbox}
    app = create_app(
        dialogue=dialogue, channels=channels, engine=sqlite_engine, ui=ui, sandbox_enabled=True
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    """The real runtime as `learnbot serve` builds it with LEARNBOT_DEMO=1, and a client."""

    runtime: Runtime
    http: httpx.AsyncClient

    async def post(self, address: str, **body: object) -> httpx.Response:
        """POST /sandbox/messages for `address`."""
        return await self.http.post("/sandbox/messages", json={"address": address, **body})

    async def say(self, address: str, text: str) -> list[str]:
        """The bot's replies to `text`, from a 200 answer."""
        response = await self.post(address, text=text)
        assert response.status_code == 200, response.text
        return [m["text"] for m in response.json()["messages"] if not m["from_learner"]]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """Shipped courses and catalogs, a migrated SQLite file, the demo cohort, the sandbox on."""
    environ = {
        "LEARNBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'served.db'}",
        "LEARNBOT_LESSONS_DIR": str(ROOT / "lessons"),
        "LEARNBOT_LOCALES_DIR": str(ROOT / "locales"),
        "LEARNBOT_DEMO": "1",
    }
    runtime = await build_runtime(Settings.from_env(environ, env_file=None))
    try:
        await ensure_demo_cohort(runtime)
        transport = httpx.ASGITransport(app=runtime.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Served(runtime, http)
    finally:
        await runtime.close()
