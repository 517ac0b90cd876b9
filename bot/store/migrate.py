"""Schema migrations with Alembic, configured in code so they run from an installed wheel."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.store.db import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

T = TypeVar("T")

# Alembic's `context` and `op` are module-level proxies: two migrations running at once in
# one process would overwrite each other's. (Across processes, env.py takes a database lock.)
_alembic_lock = threading.Lock()


def make_config(database_url: str) -> Config:
    """An Alembic Config for our migrations and this database (also for `command.revision`)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (default: the latest); safe to repeat.

    Synchronous, with its own event loop: async callers should prefer
    `await asyncio.to_thread(upgrade, url)`, which does not block their loop.
    """
    _outside_event_loop(lambda: _locked(command.upgrade, make_config(database_url), revision))


def downgrade(database_url: str, revision: str) -> None:
    """Revert the schema to `revision` ("base" drops every table): for operators, with care."""
    _outside_event_loop(lambda: _locked(command.downgrade, make_config(database_url), revision))


def head() -> str:
    """The latest revision id shipped with this version of learnbot."""
    revision = ScriptDirectory.from_config(make_config("")).get_current_head()
    if revision is None:
        raise RuntimeError(f"no Alembic revisions found in {MIGRATIONS_DIR}")
    return revision


def current(database_url: str) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    return _outside_event_loop(lambda: asyncio.run(_current(database_url)))


async def _current(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        await engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _outside_event_loop(action: Callable[[], T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return action()
    # Called from a coroutine: asyncio.run cannot nest, so run on a worker thread, which
    # blocks the caller's loop until done (acceptable at start-up, not in a request).
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(action).result()


def _locked(alembic_command: Callable[[Config, str], None], config: Config, revision: str) -> None:
    with _alembic_lock:
        alembic_command(config, revision)
