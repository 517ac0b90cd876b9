"""The console's hand-built world, migrated and filled once per test module on each backend.

Console figures only read, so one world serves a whole module:

    pytestmark = pytest.mark.asyncio(loop_scope="module")

    async def test_something(console: Console) -> None:
        async with console.engine.connect() as conn:
            ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.figures import FigureContext, Scope
from bot.lessons.loader import LoadedCourse, load_courses, teaching_by_course
from bot.store import migrate, rollups
from bot.store.db import create_engine
from tests.analytics.console_world import NOW, PRICES, SECRET, World, build_world
from tests.conftest import _postgres_database

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Console:
    """A database holding the world, its ids, the readers' scopes and the figures' context."""

    engine: AsyncEngine
    world: World
    context: FigureContext
    admin: Scope
    tom: Scope  # North's trainer
    una: Scope  # South's trainer


@pytest.fixture(scope="session")
def shipped_courses() -> dict[str, LoadedCourse]:
    """The shipped courses."""
    return load_courses(ROOT / "lessons")


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)],
)
async def console(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    shipped_courses: dict[str, LoadedCourse],
) -> AsyncIterator[Console]:
    """The world on a migrated SQLite file or PostgreSQL database (skipped without a server)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("console") / "learnbot.db"
        async for console in _filled(f"sqlite+aiosqlite:///{path}", shipped_courses):
            yield console
        return
    async with _postgres_database() as url:
        async for console in _filled(url, shipped_courses):
            yield console


async def _filled(url: str, courses: dict[str, LoadedCourse]) -> AsyncIterator[Console]:
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            world = await build_world(conn)
        await rollups.fold(engine, NOW, teaching_by_course(courses))
        yield Console(
            engine=engine,
            world=world,
            context=FigureContext(
                courses=courses, secret_key=SECRET, segment_prices=PRICES, now=NOW
            ),
            admin=Scope(cohort_ids=None, is_admin=True),
            tom=Scope(cohort_ids=frozenset({world.north})),
            una=Scope(cohort_ids=frozenset({world.south})),
        )
    finally:
        await engine.dispose()
