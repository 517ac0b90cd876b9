"""GET /healthz answers 200 when the database does, 503 when it does not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.i18n import UiCatalogs
from bot.web.app import create_app
from tests.web.conftest import FakeDialogue


async def get_health(engine: AsyncEngine, ui: UiCatalogs) -> httpx.Response:
    app = create_app(
        dialogue=FakeDialogue(), channels={}, engine=engine, ui=ui, sandbox_enabled=False
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.get("/healthz")


async def test_healthz_is_ok_when_the_database_answers(engine: AsyncEngine, ui: UiCatalogs) -> None:
    response = await get_health(engine, ui)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///{tmp}/no-such-directory/learnbot.db",
        "postgresql+asyncpg://learnbot@127.0.0.1:1/learnbot",  # nothing listens on port 1
    ],
)
async def test_healthz_is_503_when_the_database_is_unreachable(
    tmp_path: Path, url: str, ui: UiCatalogs
) -> None:
    # A bare engine: the project's create_engine would create the missing directory.
    broken = create_async_engine(url.format(tmp=tmp_path))
    try:
        response = await get_health(broken, ui)
    finally:
        await broken.dispose()
        # aiosqlite's thread reports a failed connect a moment later: let it, before the
        # test's loop closes (else it raises "Event loop is closed" in that thread).
        await asyncio.sleep(0.05)

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("error", "unreachable")
    assert body["reason"] in ("cannot open the database file", "unreachable")
