"""A console over a migrated SQLite store: staff with passwords, a cohort each, fake pages.

The store is built once per session (migrations and argon2 hashes are the slow part) and
copied for each test. Sign in with `await console.sign_in("tom@example.org")`.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette

from bot.analytics.figures import (
    Chart,
    Column,
    Figure,
    FigureContext,
    Filters,
    Page,
    Scope,
    figure,
)
from bot.config import Settings
from bot.domain import Role
from bot.i18n import UiCatalogs
from bot.lessons.loader import LoadedCourse, load_courses
from bot.store import migrate
from bot.store.db import create_engine
from bot.trainers.cohorts import create_cohort
from bot.trainers.passwords import set_password
from bot.trainers.roles import add_user
from bot.web.console.app import ConsoleConfig
from bot.web.console.routes import console_routes
from bot.web.console.throttle import SignInThrottle
from scheduler.schedule import Schedule

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery"  # every staff member's, in the shared store
STAFF = (
    ("Ada", "ada@example.org", Role.ADMIN),
    ("Tom", "tom@example.org", Role.TRAINER),
    ("Una", "una@example.org", Role.TRAINER),
)
TOMS_COHORT, UNAS_COHORT = 1, 2  # ids in the shared store
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class FakePage:
    """A page whose figures are made by hand; records the filters and scope it was asked for."""

    figures: Sequence[Figure]
    calls: list[tuple[Filters, Scope]] = field(default_factory=list)

    async def __call__(
        self, conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
    ) -> Sequence[Figure]:
        self.calls.append((filters, scope))
        return self.figures


def overview_figure() -> Figure:
    """Counts, shares, a date, a flagged row and a suppressed group: every kind the shell shows."""
    return figure(
        "cohorts",
        "Cohorts",
        [
            Column("cohort", "Cohort"),
            Column("learners", "Learners", "count"),
            Column("completion", "Completion rate", "share"),
            Column("mean", "Mean gain", "number"),
            Column("last", "Last activity", "date"),
        ],
        [
            ["Nairobi", 1234, 0.25, 0.1234, date(2026, 12, 1)],
            ['=HYPERLINK("x")', 7, 0.5, -0.5, None],
        ],
        chart=Chart("bar", "cohort", ("completion",)),
        note="Completion counts teaching lessons only.",
        suppressed=2,
        flagged=frozenset({1}),
    )


@pytest.fixture
def overview() -> FakePage:
    """The one fake page's figure source."""
    return FakePage([overview_figure()])


@pytest.fixture(scope="session")
def courses() -> dict[str, LoadedCourse]:
    """The shipped courses."""
    return load_courses(ROOT / "lessons")


@pytest.fixture(scope="session")
def shared_store(
    tmp_path_factory: pytest.TempPathFactory, courses: dict[str, LoadedCourse]
) -> Path:
    """A migrated SQLite file with Ada (admin), Tom and Una (trainers), a cohort per trainer."""
    path = tmp_path_factory.mktemp("console") / "console.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url)

    async def seed() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                users = {}
                for name, email, role in STAFF:
                    users[name] = await add_user(conn, name=name, email=email, role=role)
                    await set_password(conn, email, PASSWORD)
                for owner, name in (("Tom", "Tom's group"), ("Una", "Una's group")):
                    await create_cohort(
                        conn,
                        owner=users[owner],
                        name=name,
                        course_ids=["digital-skills"],
                        courses=courses,
                        time_zone="Africa/Nairobi",
                        schedule=Schedule(pacing="self_paced"),
                    )
        finally:
            await engine.dispose()

    asyncio.run(seed())
    return path


@dataclass
class ConsoleClient:
    """An HTTP client on the console app, keeping its cookies like a browser."""

    http: httpx.AsyncClient
    engine: AsyncEngine
    throttle: SignInThrottle

    async def csrf(self, path: str = "/console/sign-in") -> str:
        """The CSRF token of the form on `path`."""
        response = await self.http.get(path)
        found = CSRF.search(response.text)
        assert found, response.text
        return found.group(1)

    async def sign_in(self, email: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
        """Post the sign-in form as a browser would (its token read from the form)."""
        token = await self.csrf()
        return await self.http.post(
            "/console/sign-in",
            data={"csrf_token": token, "email": email, "password": password, "next": "/console"},
            headers=headers,
        )

    async def post(
        self, path: str, data: dict[str, str], form: str | None = None
    ) -> httpx.Response:
        """Post a console form with the token of the page `form` (default: `path`'s page)."""
        token = await self.csrf(form or "/console")
        return await self.http.post(path, data={"csrf_token": token, **data})


def console_settings(database: Path, public_url: str = "http://127.0.0.1:8080") -> Settings:
    """Settings of a console test: its store, the shipped lessons and catalogs."""
    return Settings(
        public_url=public_url,
        database_url=f"sqlite+aiosqlite:///{database}",
        lessons_dir=ROOT / "lessons",
        locales_dir=ROOT / "locales",
        secret_key="console-test-secret-key-0123456789abcdef",
    )


@pytest.fixture
async def console_engine(shared_store: Path, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on this test's own copy of the shared store."""
    database = tmp_path / "console.db"
    shutil.copy(shared_store, database)
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        yield engine
    finally:
        await engine.dispose()


def console_app(
    engine: AsyncEngine,
    courses: dict[str, LoadedCourse],
    pages: Sequence[Page],
    throttle: SignInThrottle,
    channels: Sequence[str] = ("sms", "telegram", "whatsapp", "sandbox"),
    public_url: str = "http://127.0.0.1:8080",
) -> Starlette:
    """The console alone, as `create_app` mounts it."""
    database = Path(str(engine.url.database))
    settings = console_settings(database, public_url)
    config = ConsoleConfig(
        settings=settings,
        engine=engine,
        ui=UiCatalogs(ROOT / "locales"),
        courses=courses,
        pages=pages,
        channels=frozenset(channels),
    )
    return Starlette(routes=console_routes(config, throttle=throttle))


@pytest.fixture
async def console(
    console_engine: AsyncEngine, courses: dict[str, LoadedCourse], overview: FakePage
) -> AsyncIterator[ConsoleClient]:
    """A client of the console with one fake page, `overview`, at /console/overview."""
    throttle = SignInThrottle()
    app = console_app(console_engine, courses, [Page("overview", "Overview", overview)], throttle)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield ConsoleClient(http, console_engine, throttle)


def now() -> datetime:
    """The time, for rows a test writes."""
    from bot.store.db import utcnow

    return utcnow()
