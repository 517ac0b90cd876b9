"""The sandbox is off unless LEARNBOT_SANDBOX=1 or LEARNBOT_DEMO=1: then every route is 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from bot.runtime import Runtime, build_runtime

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "web-0123456789abcdef"
SANDBOX_REQUESTS = [
    ("GET", "/sandbox", None),
    ("GET", f"/sandbox/messages?address={ADDRESS}&after=0&timeout=0", None),
    ("POST", "/sandbox/messages", {"address": ADDRESS, "text": "JOIN DEMO"}),
    ("GET", "/static/sandbox.js", None),
    ("GET", "/static/sandbox.css", None),
]


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"LEARNBOT_DEMO": "0", "LEARNBOT_SANDBOX": "0"}, False),
        ({"LEARNBOT_DEMO": "1"}, True),
        ({"LEARNBOT_SANDBOX": "1"}, True),
        ({"LEARNBOT_SANDBOX": "yes", "LEARNBOT_DEMO": "0"}, True),
    ],
)
def test_the_setting(environ: dict[str, str], enabled: bool) -> None:
    assert Settings.from_env(environ, env_file=None).sandbox_enabled is enabled


@pytest.fixture
async def runtime_of() -> AsyncIterator[dict[str, Runtime]]:
    """Build the real runtime from settings, as `learnbot serve` does; closed afterwards."""
    built: dict[str, Runtime] = {}
    yield built
    for runtime in built.values():
        await runtime.close()


async def serve(runtime: Runtime) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=runtime.app())
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def build(tmp_path: Path, **flags: str) -> Runtime:
    environ = {
        "LEARNBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        "LEARNBOT_LESSONS_DIR": str(ROOT / "lessons"),
        "LEARNBOT_LOCALES_DIR": str(ROOT / "locales"),
        **flags,
    }
    return await build_runtime(Settings.from_env(environ, env_file=None))


async def test_served_without_the_setting_every_sandbox_route_is_404(
    tmp_path: Path, runtime_of: dict[str, Runtime]
) -> None:
    runtime_of["off"] = runtime = await build(tmp_path)

    async with await serve(runtime) as http:
        statuses = [
            (await http.request(method, url, json=body)).status_code
            for method, url, body in SANDBOX_REQUESTS
        ]
        health = await http.get("/healthz")

    assert statuses == [404] * len(SANDBOX_REQUESTS)
    assert health.status_code == 200


async def test_served_with_the_setting_the_sandbox_answers(
    tmp_path: Path, runtime_of: dict[str, Runtime]
) -> None:
    runtime_of["on"] = runtime = await build(tmp_path, LEARNBOT_SANDBOX="1")

    async with await serve(runtime) as http:
        statuses = [
            (await http.request(method, url, json=body)).status_code
            for method, url, body in SANDBOX_REQUESTS
        ]

    assert statuses == [200] * len(SANDBOX_REQUESTS)
