"""The console in Debian's Chromium: sign in and out, a figure, a filter, a CSV download, a push
cancelled, an import with a bad row, role isolation, Arabic right to left, and axe-core on
every page (no serious or critical violation).

One browser and one server for the module; each test has its own browser context (cookies).
Skipped with the reason when playwright or /usr/bin/chromium is missing.
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
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.figures import Page
from bot.lessons.loader import LoadedCourse
from bot.store.db import create_engine
from bot.web.console.throttle import SignInThrottle
from tests.store.rows import insert_enrollment, insert_learner
from tests.trainers.conftest import LESSON, count
from tests.web.console.conftest import (
    PASSWORD,
    TOMS_COHORT,
    UNAS_COHORT,
    FakePage,
    console_app,
    overview_figure,
)
from tests.web.test_sandbox_browser import CHROMIUM, CHROMIUM_ARGS, free_port

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install playwright)"
)
axe_api = pytest.importorskip("axe_playwright_python.async_playwright", reason="no axe-playwright")
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.asyncio(loop_scope="module")
# LEARNBOT_SCREENSHOTS=docs/console: the tests also save a screenshot of each page they visit.
SCREENSHOTS = os.environ.get("LEARNBOT_SCREENSHOTS")
expect = playwright_api.expect
PAGE_BUDGET = 200 * 1024  # bytes transferred for one console page, assets included
# Bytes the browser fetched for the page and its assets (headers included), by Resource Timing.
TRANSFERRED = """() => performance.getEntriesByType("navigation")
    .concat(performance.getEntriesByType("resource"))
    .reduce((total, entry) => total + entry.transferSize, 0)"""


async def serious_violations(axe: Any, page: Any) -> list[tuple[str, str, list[Any]]]:
    """axe-core's serious and critical violations on the page as it is: (rule, impact, nodes)."""
    results = await axe.run(page)
    return [
        (violation["id"], violation["impact"], [node["target"] for node in violation["nodes"]])
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


class Served:
    """The console served on a loopback port, its store, and one browser."""

    def __init__(self, base: str, engine: AsyncEngine, browser: Any) -> None:
        self.base = base
        self.engine = engine
        self.browser = browser
        self.axe = axe_api.Axe()

    async def page(self, *, width: int = 1024, locale: str = "en-GB") -> Any:
        """A page in a new context (no cookies), in `locale`, `width` pixels wide."""
        context = await self.browser.new_context(
            viewport={"width": width, "height": 800}, locale=locale, accept_downloads=True
        )
        return await context.new_page()

    async def sign_in(self, page: Any, email: str, password: str = PASSWORD) -> None:
        """Sign in through the form."""
        await page.goto(f"{self.base}/console/sign-in")
        # By id, not by label: the form speaks the browser's language.
        await page.locator("#email").fill(email)
        await page.locator("#password").fill(password)
        await page.locator("main form button[type=submit]").click()

    async def check_accessibility(self, page: Any, screenshot: str | None = None) -> None:
        """axe-core on the page as it is: no serious or critical violation."""
        if SCREENSHOTS and screenshot:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(Path(SCREENSHOTS) / f"{screenshot}.png"), full_page=True)
        assert await serious_violations(self.axe, page) == [], page.url


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served(
    shared_store: Path, tmp_path_factory: pytest.TempPathFactory, courses: dict[str, LoadedCourse]
) -> AsyncIterator[Served]:
    """The console with one fake figure page, learners in Tom's cohort, and Chromium."""
    database = tmp_path_factory.mktemp("browser") / "console.db"
    shutil.copy(shared_store, database)
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    async with engine.begin() as conn:
        for _ in range(3):
            learner = await insert_learner(conn)
            await insert_enrollment(conn, learner["id"], TOMS_COHORT)
    pages = [Page("overview", "Overview", FakePage([overview_figure()]))]
    app = console_app(engine, courses, pages, SignInThrottle())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield Served(f"http://127.0.0.1:{port}", engine, browser)
        finally:
            await browser.close()
            server.should_exit = True
            await task
            await engine.dispose()


async def test_sign_in_and_out(served: Served) -> None:
    page = await served.page()
    await page.goto(f"{served.base}/console")
    await expect(page).to_have_url(f"{served.base}/console/sign-in?next=%2Fconsole")
    await served.check_accessibility(page, "sign-in")
    await served.sign_in(page, "tom@example.org", "a wrong password")
    await expect(page.get_by_role("alert")).to_have_text(
        "The e-mail address or the password is wrong."
    )
    await served.check_accessibility(page)
    await served.sign_in(page, "tom@example.org")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Cohorts")
    await expect(page.get_by_role("link", name="Tom's group")).to_be_visible()
    await expect(page.get_by_role("link", name="Una's group")).to_have_count(0)
    await served.check_accessibility(page, "cohorts")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    await page.goto(f"{served.base}/console")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


async def test_a_figure_its_chart_a_filter_and_its_csv(served: Served) -> None:
    page = await served.page()
    await served.sign_in(page, "ada@example.org")
    await (
        page.get_by_role("navigation", name="Console pages")
        .get_by_role("link", name="Overview")
        .click()
    )
    table = page.get_by_role("table", name="Cohorts")
    await expect(table.get_by_role("row")).to_have_count(3)
    await expect(table.get_by_role("row").nth(2)).to_contain_text("⚑ flagged")
    chart = page.get_by_role("img", name="Cohorts")
    await expect(chart.locator("canvas")).to_have_count(1)  # uPlot drew it
    await served.check_accessibility(page, "figure-page")
    await page.wait_for_load_state("networkidle")
    transferred = await page.evaluate(TRANSFERRED)
    assert 0 < transferred < PAGE_BUDGET

    await page.get_by_label("Cohort", exact=True).select_option(str(TOMS_COHORT))
    await page.get_by_label("From", exact=True).fill("2026-11-01")
    await page.get_by_role("button", name="Apply").click()
    await expect(page).to_have_url(
        f"{served.base}/console/overview?since=2026-11-01&until=&cohort={TOMS_COHORT}&course="
    )
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download this table (CSV)").click()
    download = await download_info.value
    assert download.suggested_filename == "overview-cohorts.csv"
    text = Path(await download.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0] == "cohort,learners,completion,mean,last"

    # Printed (a programme officer's PDF), the page is the figures alone.
    await page.emulate_media(media="print")
    await expect(page.get_by_role("navigation", name="Console pages")).to_be_hidden()
    await expect(page.locator("form.filters")).to_be_hidden()
    await expect(table).to_be_visible()
    await page.emulate_media(media="screen")

    await page.goto(f"{served.base}/console/overview?since=someday")
    await expect(page.get_by_role("alert")).to_contain_text("Filter From:")
    await served.check_accessibility(page)


async def test_a_push_with_its_progress_then_cancelled(served: Served) -> None:
    page = await served.page()
    await served.sign_in(page, "tom@example.org")
    await page.get_by_role("link", name="Tom's group").click()
    await served.check_accessibility(page, "cohort")
    await page.get_by_label("Lesson", exact=True).select_option(LESSON)
    await page.get_by_role("button", name="Push the lesson").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(LESSON)
    await expect(page.locator("dl.counts")).to_contain_text("0 / 3")
    await served.check_accessibility(page, "push-progress")
    await page.get_by_role("button", name="Cancel the push").click()
    await expect(page.get_by_text("Status: cancelled")).to_be_visible()
    await expect(page.get_by_role("button", name="Cancel the push")).to_have_count(0)


async def test_an_import_with_a_bad_row_imports_nothing(served: Served, tmp_path: Path) -> None:
    csv = tmp_path / "learners.csv"
    csv.write_text(
        "name,phone,channel,locale\nAmina,+254712345678,sms,sw\nBaraka,12,sms,sw\n",
        encoding="utf-8",
    )
    page = await served.page()
    await served.sign_in(page, "tom@example.org")
    await page.goto(f"{served.base}/console/cohorts/{TOMS_COHORT}")
    before = await count(served.engine, __import__("bot.store.tables").store.tables.learners)
    await page.get_by_label("CSV file").set_input_files(str(csv))
    await page.get_by_role("button", name="Import", exact=True).click()
    problems = page.locator(".problem")
    await expect(problems).to_contain_text("1 bad row: nothing imported")
    await expect(problems).to_contain_text("Line 3, phone:")
    await served.check_accessibility(page, "import-bad-row")
    after = await count(served.engine, __import__("bot.store.tables").store.tables.learners)
    assert after == before


async def test_another_trainers_cohort_is_not_found(served: Served) -> None:
    page = await served.page()
    await served.sign_in(page, "tom@example.org")
    response = await page.goto(f"{served.base}/console/cohorts/{UNAS_COHORT}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("alert")).to_have_text("There is no such page in the console.")
    await served.check_accessibility(page)


async def test_arabic_reads_right_to_left_and_fits_a_phone(served: Served) -> None:
    page = await served.page(width=375, locale="ar")
    await served.sign_in(page, "ada@example.org")
    await page.goto(f"{served.base}/console/overview")
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    # The page's title is a message id, translated like every other string.
    await expect(page.get_by_role("heading", level=1)).to_have_text("نظرة عامة")
    await served.check_accessibility(page, "figure-page-ar-375px")
    await page.get_by_role("link", name="Français").click()
    await expect(page.locator("html")).to_have_attribute("dir", "ltr")
    await expect(page.get_by_role("button", name="Appliquer")).to_be_visible()
    await page.get_by_role("link", name="العربية").click()
    await expect(page.locator("html")).to_have_attribute("lang", "ar")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375  # nothing sticks out sideways on a small phone
    await page.goto(f"{served.base}/console/cohorts/{TOMS_COHORT}")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await served.check_accessibility(page, "cohort-ar-375px")


async def test_an_invitation_in_the_browser(served: Served) -> None:
    from bot.trainers.passwords import invite

    async with served.engine.begin() as conn:
        made = await invite(conn, "una@example.org", served.base)
    page = await served.page()
    await page.goto(made.link)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Choose your password")
    await served.check_accessibility(page, "invitation")
    await page.get_by_label("New password (at least 12 characters)").fill("una's own password")
    await page.get_by_label("The same password again").fill("una's own password")
    await page.get_by_role("button", name="Set the password and sign in").click()
    await expect(page.get_by_role("link", name="Una's group")).to_be_visible()
    await page.goto(made.link)
    await expect(page.get_by_role("alert")).to_contain_text("expired or was already used")
    await served.check_accessibility(page)
