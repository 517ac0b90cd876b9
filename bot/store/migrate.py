"""Schema migrations with Alembic, configured in code so they run from an installed wheel."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.store.db import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_config(database_url: str) -> Config:
    """An Alembic Config for our migrations and this database (also for `command.revision`)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (default: the latest); safe to repeat.

    Synchronous: it runs its own event loop, so async callers use `asyncio.to_thread`.
    """
    command.upgrade(make_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Revert the schema to `revision` ("base" drops every table): for operators, with care."""
    command.downgrade(make_config(database_url), revision)


def head() -> str:
    """The latest revision id shipped with this version of learnbot."""
    revision = ScriptDirectory.from_config(make_config("")).get_current_head()
    if revision is None:
        raise RuntimeError(f"no Alembic revisions found in {MIGRATIONS_DIR}")
    return revision


def current(database_url: str) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    return asyncio.run(_current(database_url))


async def _current(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        await engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
