"""Shared fixtures: no network beyond loopback, and migrated databases on SQLite and PostgreSQL.

Reuse in any test:

    async def test_something(engine: AsyncEngine) -> None:  # runs on sqlite and postgresql
        async with engine.begin() as conn:
            ...

`database_url` gives the URL of a fresh, empty (unmigrated) database; `engine` an AsyncEngine
on the same database after `migrate.upgrade`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.dialogue import Dialogue
from bot.i18n import UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import load_courses
from bot.store import migrate
from bot.store.db import create_engine

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
# Tried in order with trust authentication: the admin role of a stock server, then the
# role named after the OS user of a developer's machine or CI container.
POSTGRES_ADMINS = (
    ("postgres", "postgres"),
    ("postgres", "test"),
    ("root", "test"),
    ("root", "postgres"),
)


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a host other than this machine."""


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):
        return True  # an AF_UNIX socket path: never leaves the machine
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
    host = host.split("%", 1)[0]  # IPv6 scope id
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a host name: resolving it already means asking the network
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _check(address: Any) -> None:
    if not _is_loopback(address):
        raise NetworkBlockedError(f"tests may not connect to {address!r}: only loopback")


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse every socket connection except to loopback and unix sockets."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def connect(self: socket.socket, address: Any) -> None:
        _check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(address)
        return real_connect_ex(self, address)

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        _check(address)
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield


_postgres_unreachable: list[str] = []  # the reason, once known: later tests skip at once


@asynccontextmanager
async def _postgres_database() -> AsyncIterator[str]:
    """Create a uniquely named database on the local server, yield its URL, drop it."""
    if _postgres_unreachable:
        pytest.skip(_postgres_unreachable[0])
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # the `postgres` extra is not installed
        _postgres_unreachable.append("PostgreSQL not reachable on 127.0.0.1:5432: no asyncpg")
        pytest.skip(_postgres_unreachable[0])
    name = f"learnbot_test_{uuid.uuid4().hex[:12]}"
    errors: list[str] = []
    for user, admin_database in POSTGRES_ADMINS:
        try:
            admin = await asyncpg.connect(
                host=POSTGRES_HOST,
                port=POSTGRES_PORT,
                user=user,
                database=admin_database,
                timeout=5,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            errors.append(f"{user}@{admin_database}: {exc}")
            continue
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.PostgresError as exc:
            errors.append(f"{user}@{admin_database}: {exc}")
            await admin.close()
            continue
        try:
            yield f"postgresql+asyncpg://{user}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        return
    _postgres_unreachable.append(
        f"PostgreSQL not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}: {'; '.join(errors)}"
    )
    pytest.skip(_postgres_unreachable[0])


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'learnbot.db'}"
        return
    async with _postgres_database() as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An AsyncEngine on a migrated, empty database (both backends)."""
    # upgrade runs its own event loop, so it cannot run on this one.
    await asyncio.to_thread(migrate.upgrade, database_url)
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def shipped(engine: AsyncEngine) -> AsyncIterator[Dialogue]:
    """A Dialogue on the shipped courses, with a self-paced cohort DS1 on digital-skills."""
    root = Path(__file__).resolve().parent.parent
    courses = load_courses(root / "lessons")
    content = load_translations(courses.values(), root / "locales")
    dialogue = Dialogue(engine, courses, content, UiCatalogs(root / "locales"))
    await dialogue.create_cohort(name="DS one", join_code="DS1", course_ids=["digital-skills"])
    try:
        yield dialogue
    finally:
        await dialogue.aclose()
