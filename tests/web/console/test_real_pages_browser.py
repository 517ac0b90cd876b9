"""Every real console page, over a small data set of bench/dataset.py, in Debian's Chromium.

The whole app (`Runtime.app()`, the analytics layer's pages) on a loopback port: each page
as an admin and as a trainer, in English and in Arabic (right to left), at 375 px: axe-core
finds no serious or critical violation, and no page transfers more than 200 KB, assets
included. With LEARNBOT_SCREENSHOTS=docs/console it also saves the screenshots the README
links (`make screenshots`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import select

from bench.dataset import build
from bot.analytics.console.pages import PAGES
from bot.analytics.pseudonym import pseudonym
from bot.config import Settings
from bot.runtime import build_runtime
from bot.store.tables import cohorts, enrollments, learners, users
from bot.trainers.passwords import set_password
from tests.web.console.test_console_browser import PAGE_BUDGET, TRANSFERRED, serious_violations
from tests.web.test_sandbox_browser import CHROMIUM, CHROMIUM_ARGS, free_port

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
axe_api = pytest.importorskip("axe_playwright_python.async_playwright", reason="no axe-playwright")
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = os.environ.get("LEARNBOT_SCREENSHOTS")
PASSWORD = "real-pages-password-1"
SECRET = "real-pages-secret-key-0123456789abcdef"


class World:
    """The served app, its staff, a cohort of the trainer's, a learner of it, and Chromium."""

    def __init__(self, base: str, browser: Any, found: dict[str, Any]) -> None:
        self.base = base
        self.browser = browser
        self.axe = axe_api.Axe()
        self.admin, self.trainer = found["admin"], found["trainer"]
        self.cohort, self.learner = found["cohort"], found["learner"]

    async def signed_in(self, email: str, *, locale: str = "en-GB", width: int = 1024) -> Any:
        context = await self.browser.new_context(
            viewport={"width": width, "height": 900}, locale=locale
        )
        page = await context.new_page()
        await page.goto(f"{self.base}/console/sign-in")
        await page.locator("#email").fill(email)
        await page.locator("#password").fill(PASSWORD)
        await page.locator("main form button[type=submit]").click()
        await page.wait_for_url(f"{self.base}/console")
        return page

    async def check(self, page: Any, path: str, shot: str | None = None) -> None:
        """Open `path`: 200, within the byte budget, and no serious axe violation."""
        response = await page.goto(f"{self.base}{path}")
        assert response.status == 200, path
        await page.wait_for_load_state("networkidle")
        transferred = await page.evaluate(TRANSFERRED)
        assert transferred <= PAGE_BUDGET, f"{path}: {transferred} bytes"
        if SCREENSHOTS and shot:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(Path(SCREENSHOTS) / f"{shot}.png"), full_page=True)
        assert await serious_violations(self.axe, page) == [], path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('real') / 'console.db'}"
    await build(url, learners=600, events=12_000)
    settings = Settings(
        database_url=url,
        secret_key=SECRET,
        lessons_dir=ROOT / "lessons",
        locales_dir=ROOT / "locales",
    )
    runtime = await build_runtime(settings)
    found: dict[str, Any] = {}
    async with runtime.engine.begin() as conn:
        found["admin"] = (
            await conn.execute(select(users.c.email).where(users.c.role == "admin"))
        ).scalar()
        trainer_id, found["trainer"] = (
            await conn.execute(
                select(users.c.id, users.c.email).where(users.c.role == "trainer").limit(1)
            )
        ).one()
        found["cohort"] = (
            await conn.execute(select(cohorts.c.id).where(cohorts.c.owner_id == trainer_id))
        ).scalar()
        key = (
            await conn.execute(
                select(learners.c.learner_key)
                .join(enrollments, enrollments.c.learner_id == learners.c.id)
                .where(enrollments.c.cohort_id == found["cohort"], learners.c.channel == "sms")
                .limit(1)
            )
        ).scalar()
        found["learner"] = pseudonym(SECRET, key)
        for email in (found["admin"], found["trainer"]):
            await set_password(conn, email, PASSWORD)
    port = free_port()
    config = uvicorn.Config(runtime.app(), host="127.0.0.1", port=port, log_level="warning")
    config.lifespan = "off"  # the pages only: no planner, no dispatcher
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield World(f"http://127.0.0.1:{port}", browser, found)
        finally:
            await browser.close()
            server.should_exit = True
            await task
            await runtime.close()


async def test_every_page_as_an_admin(world: World) -> None:
    page = await world.signed_in(world.admin)
    await world.check(page, "/console", "home")
    for figure_page in PAGES:
        await world.check(page, f"/console/{figure_page.key}", figure_page.key)
    await world.check(page, f"/console/cohorts/{world.cohort}", "cohort")
    await world.check(page, f"/console/cohorts/{world.cohort}/report", "report")
    await world.check(page, f"/console/learners?pseudonym={world.learner}", "learner")


async def test_every_page_as_a_trainer_at_375_px_and_with_a_filter(world: World) -> None:
    page = await world.signed_in(world.trainer, width=375)
    for figure_page in PAGES:
        path = f"/console/{figure_page.key}?cohort={world.cohort}"
        await world.check(
            page, path, f"{figure_page.key}-375px" if figure_page is PAGES[0] else None
        )


async def test_every_page_in_arabic_right_to_left(world: World) -> None:
    page = await world.signed_in(world.admin, locale="ar")
    await page.goto(f"{world.base}/console/language?lang=ar&next=/console")
    assert await page.locator("html").get_attribute("dir") == "rtl"
    for figure_page in PAGES:
        shot = f"{figure_page.key}-ar" if figure_page.key in ("overview", "questions") else None
        await world.check(page, f"/console/{figure_page.key}", shot)
    await world.check(page, f"/console/cohorts/{world.cohort}/report", "report-ar")
