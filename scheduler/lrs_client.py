"""A Learning Record Store's statements resource over HTTP Basic (httpx), as xAPI 1.0.3 says."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from bot.analytics.xapi.vocabulary import XAPI_VERSION

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_REASON = 500

Outcome = Literal["stored", "conflict", "refused", "unavailable"]


@dataclass(frozen=True, slots=True)
class PostResult:
    """What the LRS said to one POST of statements."""

    outcome: Outcome
    status_code: int  # 0 when no HTTP answer came (network error)
    reason: str = ""
    retry_after: float | None = None


class LrsClient:
    """POSTs batches of statements to `<endpoint>/statements`."""

    def __init__(
        self,
        endpoint: str,
        username: str | None,
        password: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        auth = httpx.BasicAuth(username, password or "") if username else None
        self.url = endpoint.rstrip("/") + "/statements"
        self._client = httpx.AsyncClient(
            auth=auth,
            timeout=TIMEOUT,
            transport=transport,
            headers={"X-Experience-API-Version": XAPI_VERSION},
        )

    async def post(self, statements: Sequence[dict[str, Any]]) -> PostResult:
        """POST a batch; the LRS stores all of it or none of it."""
        body = json.dumps(list(statements), ensure_ascii=False, separators=(",", ":"))
        try:
            response = await self._client.post(
                self.url,
                content=body.encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            # Never the URL with credentials, nor a repr: the kind of failure and the host.
            return PostResult("unavailable", 0, f"{type(exc).__name__}: {self.url}")
        return _result(response)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def _result(response: httpx.Response) -> PostResult:
    code = response.status_code
    if code in (200, 204):
        return PostResult("stored", code)
    reason = f"{code} {_reason(response)}"
    if code == 409:
        return PostResult("conflict", code, reason)
    if code in (400, 413, 422):
        # The LRS will never take this content: retrying cannot succeed.
        return PostResult("refused", code, reason)
    return PostResult("unavailable", code, reason, _retry_after(response))


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_REASON].strip()
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return json.dumps(detail, ensure_ascii=False)[:MAX_REASON]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None
