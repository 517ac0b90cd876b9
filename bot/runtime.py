"""Builds the running parts from settings: store, courses, catalogs, dialogue, channels, app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from bot.channels.base import Channel
from bot.channels.sandbox import SandboxChannel
from bot.config import Settings
from bot.dialogue import Dialogue
from bot.domain import ChannelName
from bot.i18n import UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import LoadedCourse, load_courses
from bot.store.db import create_engine
from bot.store.migrate import upgrade
from bot.web.app import create_app

log = logging.getLogger(__name__)

DEMO_JOIN_CODE = "DEMO"


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a running learnbot holds, built once at start-up."""

    settings: Settings
    engine: AsyncEngine
    courses: Mapping[str, LoadedCourse]
    ui: UiCatalogs
    dialogue: Dialogue
    channels: Mapping[ChannelName, Channel]

    async def close(self) -> None:
        """Release the dialogue's connections and the engine's pool."""
        await self.dialogue.aclose()
        await self.engine.dispose()

    def app(self) -> Starlette:
        """The ASGI app serving health, the sandbox and (later) the provider webhooks."""
        return create_app(
            dialogue=self.dialogue, channels=self.channels, engine=self.engine, ui=self.ui
        )


async def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Migrate the store, load and validate every course, and wire the dialogue."""
    if migrate:
        # Alembic runs its own event loop inside; keep it off ours.
        await asyncio.to_thread(upgrade, settings.database_url)
    courses = load_courses(settings.lessons_dir)  # raises naming file, line and field
    content = load_translations(courses.values(), settings.locales_dir)
    ui = UiCatalogs(settings.locales_dir, default=settings.default_locale)
    engine = create_engine(settings.database_url)
    dialogue = Dialogue(engine, courses, content, ui, default_locale=settings.default_locale)
    channels: dict[ChannelName, Channel] = {ChannelName.SANDBOX: SandboxChannel()}
    return Runtime(settings, engine, courses, ui, dialogue, channels)


async def ensure_demo_cohort(runtime: Runtime) -> int:
    """Create (once) the self-paced demo cohort with join code DEMO on every shipped course."""
    ordered = _pathway_order(runtime.courses)
    return await runtime.dialogue.create_cohort(
        name="Demo cohort", join_code=DEMO_JOIN_CODE, course_ids=ordered, time_zone="UTC"
    )


def _pathway_order(courses: Mapping[str, LoadedCourse]) -> list[str]:
    """Course ids with every prerequisite before the courses that require it."""
    ordered: list[str] = []

    def visit(course_id: str) -> None:
        if course_id in ordered:
            return
        for required in courses[course_id].course.requires:
            visit(required)
        ordered.append(course_id)

    for course_id in sorted(courses):
        visit(course_id)
    return ordered


async def serve(settings: Settings, *, host: str, port: int) -> None:
    """Run learnbot under uvicorn until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runtime = await build_runtime(settings)
    try:
        if settings.demo:
            cohort_id = await ensure_demo_cohort(runtime)
            log.info("demo cohort %s ready: join code %s", cohort_id, DEMO_JOIN_CODE)
        config = uvicorn.Config(runtime.app(), host=host, port=port, log_level="info")
        log.info("sandbox at http://%s:%s/sandbox", host, port)
        await uvicorn.Server(config).serve()
    finally:
        await runtime.close()
