"""Alembic environment: runs revisions on our async engine (see bot.store.migrate)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from bot.store.db import create_engine
from bot.store.tables import metadata

config = context.config

# Any fixed 64-bit number, the same in every learnbot process: the advisory lock's name.
POSTGRES_MIGRATION_LOCK = 0x1EA2_B07_0001


def _database_url() -> str:
    # bot.store.migrate passes the URL as an attribute: no alembic.ini, and no
    # ConfigParser interpolation of '%' in passwords.
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: call bot.store.migrate.upgrade(database_url)")
    return str(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite can alter little in place: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several processes may start `serve` at once: the first migrates, the others
            # wait here, then find the database at head and do nothing.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_MIGRATION_LOCK}
            )
        context.run_migrations()


async def _run_online() -> None:
    # Foreign keys off while migrating SQLite: a batch migration drops and recreates a
    # table, and with foreign keys on that DROP would cascade-delete the referencing rows.
    engine = create_engine(_database_url(), foreign_keys=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    url = make_url(_database_url())
    context.configure(
        url=url,
        target_metadata=metadata,
        render_as_batch=url.get_backend_name() == "sqlite",
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_online())
