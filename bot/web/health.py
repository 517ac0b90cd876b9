"""GET /healthz: the process answers and the database does too."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger(__name__)
DATABASE_TIMEOUT_SECONDS = 5.0


async def database_reachable(
    engine: AsyncEngine, timeout: float = DATABASE_TIMEOUT_SECONDS
) -> bool:
    """True if `SELECT 1` succeeds within `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure means unhealthy; the log keeps the reason
        log.warning("health check: database unreachable", exc_info=True)
        return False
    return True


def health_routes(engine: AsyncEngine) -> list[Route]:
    """The /healthz route bound to `engine`."""

    async def healthz(request: Request) -> JSONResponse:
        if await database_reachable(engine):
            return JSONResponse({"status": "ok", "database": "ok"})
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)

    return [Route("/healthz", healthz, methods=["GET"])]
