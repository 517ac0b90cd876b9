"""GET /healthz: the process answers, and the store answers and takes writes.

`SELECT 1` alone said "ok" on a read-only database and on a full disk. The check commits a
one-row heartbeat (a read-only file or volume, a standby, a lock never released, a server
gone: all refuse it), and on SQLite also looks at the free space where the database lives:
a full disk can still take the heartbeat, which SQLite writes over WAL frames it already
has, while every turn that adds rows fails. A turn the store refused in the last minute
counts too (the surest sign on a server whose disk is full). Cheap enough for a probe every
few seconds: one tiny commit and a statvfs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.store.availability import store_outage, unavailable_reason, write_heartbeat
from bot.store.db import utcnow

log = logging.getLogger(__name__)
# Each of the two checks gets this long: both together stay within the Dockerfile's
# HEALTHCHECK --timeout=5s.
DATABASE_TIMEOUT_SECONDS = 2.0
# Less free space than this under a SQLite database is a full disk: a turn's commit, the
# checkpoint and the WAL's growth need a few pages each, and an operator needs the warning.
MIN_FREE_BYTES = 1024 * 1024
RECENT_REFUSAL_SECONDS = 60.0


async def unreachable_reason(
    engine: AsyncEngine, timeout: float = DATABASE_TIMEOUT_SECONDS
) -> str | None:
    """Why `SELECT 1` does not succeed within `timeout` seconds, or None when it does."""
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        reason = f"no answer within {timeout:g} s"
    except Exception as exc:  # any failure means unhealthy
        reason = unavailable_reason(exc) or "the database refused the connection"
        # One line, no traceback: a probe every few seconds would fill the log with them.
        log.warning("health check: database unreachable (%s): %s", reason, exc)
    else:
        return None
    return reason


async def write_refused(
    engine: AsyncEngine, worker: str, timeout: float = DATABASE_TIMEOUT_SECONDS
) -> str | None:
    """Why the store does not take writes now, or None when it does."""
    try:
        async with asyncio.timeout(timeout), engine.begin() as connection:
            await write_heartbeat(connection, worker, utcnow())
    except TimeoutError:
        return f"a write took more than {timeout:g} s"
    except Exception as exc:
        reason = unavailable_reason(exc) or "the heartbeat write failed"
        # One line, no traceback: a probe every few seconds would fill the log with them.
        log.warning("health check: the store refuses writes (%s): %s", reason, exc)
        return reason
    free = sqlite_free_bytes(engine)
    if free is not None and free < MIN_FREE_BYTES:
        return f"disk full ({free // 1024} KiB free where the database is)"
    return store_outage(engine).current(RECENT_REFUSAL_SECONDS)


def sqlite_free_bytes(engine: AsyncEngine) -> int | None:
    """Bytes free to us on the file system of a SQLite database file (None otherwise)."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        return None
    folder = Path(database.removeprefix("file:").partition("?")[0]).expanduser().parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None  # the heartbeat has already said what is wrong with the path
    return stats.f_bavail * stats.f_frsize


def health_routes(engine: AsyncEngine) -> list[Route]:
    """The /healthz route bound to `engine`."""
    worker = f"{socket.gethostname()[:40]}:{os.getpid()}"

    async def healthz(request: Request) -> JSONResponse:
        reason = await unreachable_reason(engine)
        if reason is not None:
            body = {"status": "error", "database": "unreachable", "reason": reason}
            return JSONResponse(body, status_code=503)
        reason = await write_refused(engine, worker)
        if reason is not None:
            body = {"status": "error", "database": "unwritable", "reason": reason}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    return [Route("/healthz", healthz, methods=["GET"])]
