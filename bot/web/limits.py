"""Bounded request bodies: a cap checked before reading, and a read that stops at the cap.

    try:
        body = await read_body(request, limit=64 * 1024)
    except BodyRefused as refused:
        return refused.response()

A `Content-Length` over the cap is refused before a byte is read; a chunked body (no length)
is read from `request.stream()` with a running count and cut off as soon as it passes the
cap, so a 400 MB POST costs at most the cap and one chunk of memory.
"""

from __future__ import annotations

import re

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

_DIGITS = re.compile(r"[0-9]{1,20}")  # ASCII digits only: "²".isdigit() is True


class BodyRefused(Exception):
    """A request body that is not read (too large, or its length unreadable)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self) -> Response:
        """The plain-text answer naming the problem."""
        return plain(self.reason, self.status)


def plain(reason: str, status: int) -> Response:
    """A short plain-text error response (never an exception repr)."""
    return PlainTextResponse(reason, status_code=status)


def describe(limit: int) -> str:
    """`limit` bytes in words, e.g. "256 KB"."""
    return f"{limit // 1024} KB" if limit % 1024 == 0 else f"{limit} bytes"


def declared_length(request: Request, limit: int) -> int | None:
    """The request's Content-Length (None if absent); BodyRefused if unreadable or over `limit`."""
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw.strip()):
        raise BodyRefused(400, "Content-Length is not a number")
    length = int(raw.strip())
    if length > limit:
        raise BodyRefused(413, f"the body is larger than {describe(limit)}")
    return length


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; BodyRefused (413) as soon as it is longer."""
    declared_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyRefused(413, f"the body is larger than {describe(limit)}")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise BodyRefused(400, "the client went away before the body was complete") from exc
    return b"".join(chunks)


def media_type(request: Request) -> str:
    """The Content-Type without its parameters, lower case ("" if absent)."""
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()
