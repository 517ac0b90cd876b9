"""A fake Twilio REST API on 127.0.0.1: records Messages.json posts and answers like Twilio.

    async with FakeTwilio() as fake:           # serves on a free loopback port
        settings = replace(settings, twilio_api_url=fake.url)
        fake.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
        ...
        fake.messages[-1].params["Body"]

Run it in its own thread (for a server in another process or another loop) with
`FakeTwilio().serve_in_thread()`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import math
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One Messages.json request as Twilio received it."""

    account_sid: str
    username: str  # from HTTP basic auth
    password: str
    params: dict[str, str]  # single-valued form fields
    media_urls: tuple[str, ...]  # MediaUrl may repeat
    sid: str | None  # the SID answered, None when the request was refused


@dataclass(slots=True)
class _Plan:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeTwilio:
    """The slice of Twilio's REST API the SMS and WhatsApp channels use."""

    def __init__(self) -> None:
        self.messages: list[SentMessage] = []
        self._plans: deque[_Plan] = deque()
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.num_segments: int | None = None  # None: counted from the body like GSM-7
        self.app = Starlette(
            routes=[
                Route(
                    "/2010-04-01/Accounts/{account}/Messages.json",
                    self._create_message,
                    methods=["POST"],
                )
            ]
        )

    @property
    def url(self) -> str:
        """Base URL to give the SDK instead of https://api.twilio.com."""
        return f"http://127.0.0.1:{self.port}"

    def fail_next(
        self,
        status: int,
        code: int | None = None,
        message: str = "refused",
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request with a Twilio error (code None: a bare HTTP error)."""
        body = None
        if code is not None:
            body = {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            }
        self._plans.append(_Plan(status, body, headers or {}))

    def delay_next(self, seconds: float) -> None:
        """Answer the next request normally, but only after `seconds`."""
        self._plans.append(_Plan(201, delay=seconds))

    async def _create_message(self, request: Request) -> Response:
        form = await request.form()
        username, password = _basic_auth(request.headers.get("Authorization", ""))
        plan = self._plans.popleft() if self._plans else _Plan(201)
        if plan.delay:
            await asyncio.sleep(plan.delay)
        params = {key: str(value) for key, value in form.items()}
        media = tuple(str(value) for value in form.getlist("MediaUrl"))
        account = request.path_params["account"]
        if plan.status != 201:
            self.messages.append(SentMessage(account, username, password, params, media, None))
            if plan.body is None:
                return Response("upstream trouble", plan.status, headers=plan.headers)
            return JSONResponse(plan.body, plan.status, headers=plan.headers)
        sid = f"SM{next(self._ids):032x}"
        self.messages.append(SentMessage(account, username, password, params, media, sid))
        body = params.get("Body", "")
        segments = self.num_segments or (1 if len(body) <= 160 else math.ceil(len(body) / 153))
        resource = {
            "sid": sid,
            "account_sid": account,
            "to": params.get("To"),
            "from": params.get("From"),
            "messaging_service_sid": params.get("MessagingServiceSid"),
            "body": body,
            "status": "queued",
            "num_segments": str(segments),
            "num_media": str(len(media)),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
            "date_created": "Mon, 01 Jan 2024 12:00:00 +0000",
            "date_updated": "Mon, 01 Jan 2024 12:00:00 +0000",
            "date_sent": None,
            "subresource_uris": {},
        }
        return JSONResponse(resource, 201)

    # --- running it --------------------------------------------------------------------

    def _bind(self) -> tuple[uvicorn.Server, socket.socket]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        return uvicorn.Server(config), sock

    async def __aenter__(self) -> FakeTwilio:
        self._server, sock = self._bind()
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task

    def serve_in_thread(self) -> FakeTwilio:
        """Serve from a daemon thread with its own event loop; `stop_thread` ends it."""
        self._server, sock = self._bind()
        server = self._server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        self._thread.start()
        while not server.started:
            threading.Event().wait(0.01)
        return self

    def stop_thread(self) -> None:
        """Stop a server started by `serve_in_thread`."""
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(5)


def _basic_auth(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    username, _, password = base64.b64decode(encoded).decode().partition(":")
    return username, password
