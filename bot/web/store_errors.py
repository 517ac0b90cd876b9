"""503 for any route whose write the store refused, so the provider retries it later.

Routes do not catch store errors themselves: a turn raises `StoreUnavailable`, and a route
that writes through the engine directly (the Twilio status callback, a staff /push) lets
SQLAlchemy's error through; both end here. The body is short and plain, and never names the
database error (a log line does, once per outage).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ExceptionHandler

from bot.store.availability import StoreUnavailable, store_outage, unavailable_reason

RETRY_AFTER_SECONDS = 5  # Telegram and Twilio retry on their own schedule; others may read it
BODY = "store unavailable, retry later"


def store_unavailable_response() -> Response:
    """The 503 a provider retries."""
    return PlainTextResponse(
        BODY, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def store_error_handlers(engine: AsyncEngine) -> Mapping[type[Exception], ExceptionHandler]:
    """Starlette exception handlers mapping a refused write to 503; other errors stay 500."""
    outage = store_outage(engine)

    async def unavailable(request: Request, error: Exception) -> Response:
        reason = unavailable_reason(error)
        if reason is None:
            raise error  # a bug, not an outage: the server's 500 and its traceback
        if not isinstance(error, StoreUnavailable):
            outage.refused(reason)  # the dialogue records the turns it refused itself
        return store_unavailable_response()

    return {
        StoreUnavailable: unavailable,
        sa_exc.DBAPIError: unavailable,
        sa_exc.TimeoutError: unavailable,
        OSError: unavailable,  # asyncpg's own error when it cannot connect
    }
