"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 that PTB reaches through base_url.

    fake = FakeBotApi()
    async with fake.running() as base_url:            # e.g. http://127.0.0.1:PORT/bot
        bot = Bot(fake.token, base_url=base_url)
        await bot.send_message(42, "hi")
    assert fake.calls_to("sendMessage")[0].params["text"] == "hi"

`fail_next(method, status, description, retry_after=...)` queues an error answer, exactly as
Telegram shapes it; `delay` holds every answer back (for timeouts); `push_update` feeds
getUpdates (long polling waits for it, like Telegram).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import queue
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN = "123456:TEST-token_for-the-fake"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Learnbot", "username": "learnbot_bot"}
JSON_FIELDS = ("reply_markup", "allowed_updates", "commands", "scope")


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Bot API request as the fake received it (JSON fields decoded)."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() on arrival


@dataclass(frozen=True, slots=True)
class Failure:
    """An error answer queued for the next call of a method."""

    status: int
    description: str
    parameters: dict[str, Any] | None = None


class FakeBotApi:
    """Records every call and answers like the Bot API (messages get increasing ids)."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[ApiCall] = []
        self.messages: list[dict[str, Any]] = []  # every message sent, as the fake answered it
        self.delay = 0.0
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        self._message_ids = itertools.count(1)
        self._updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.app = Starlette(
            routes=[Route("/bot{token}/{method}", self._endpoint, methods=["POST"])]
        )

    def calls_to(self, method: str) -> list[ApiCall]:
        """The calls of one method, oldest first."""
        return [call for call in self.calls if call.method == method]

    def sent_to(self, chat_id: int | str) -> list[dict[str, Any]]:
        """Messages sent to one chat, oldest first (text or caption, reply_markup, message_id)."""
        return [m for m in self.messages if str(m["chat"]["id"]) == str(chat_id)]

    def fail_next(
        self, method: str, status: int, description: str, *, retry_after: int | None = None
    ) -> None:
        """Answer the next call of `method` with an error (429 carries `retry_after`)."""
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        self._failures[method].append(Failure(status, description, parameters))

    def migrate_next(self, method: str, new_chat_id: int) -> None:
        """Answer the next call of `method` as Telegram does for a group turned supergroup."""
        failure = Failure(400, "Bad Request: group chat was upgraded to a supergroup chat")
        self._failures[method].append(
            Failure(failure.status, failure.description, {"migrate_to_chat_id": new_chat_id})
        )

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates."""
        self._updates.put_nowait(update)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """Serve on a free 127.0.0.1 port; yield the base_url to give PTB's `Bot`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        try:
            yield f"http://127.0.0.1:{port}/bot"
        finally:
            server.should_exit = True
            await task
            sock.close()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[str]:
        """Serve from a thread with its own loop (for sync callers such as click commands)."""
        started: queue.Queue[str] = queue.Queue()
        stop = threading.Event()

        async def serve() -> None:
            async with self.running() as base_url:
                started.put(base_url)
                while not stop.is_set():
                    await asyncio.sleep(0.01)

        thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        thread.start()
        try:
            yield started.get(timeout=10)
        finally:
            stop.set()
            thread.join(timeout=10)

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        params = await _params(request)
        self.calls.append(ApiCall(method, params, time.monotonic()))
        if self.delay:
            await asyncio.sleep(self.delay)
        queued = self._failures.get(method)
        if queued:
            failure = queued.popleft()
            return _error(failure.status, failure.description, failure.parameters)
        return JSONResponse({"ok": True, "result": await self._result(method, params)})

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method in ("sendMessage", "sendPhoto"):
            message = self._message(params)
            self.messages.append(message)
            return message
        if method == "editMessageReplyMarkup":
            return self._message(params, message_id=int(params["message_id"]))
        if method == "getUpdates":
            return await self._get_updates(params)
        # answerCallbackQuery, setWebhook, deleteWebhook, setMyCommands, ...
        return True

    def _message(self, params: dict[str, Any], message_id: int | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id or next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
        }
        if "text" in params:
            message["text"] = params["text"]
        if "photo" in params:
            message["photo"] = [{"file_id": "p1", "file_unique_id": "u1", "width": 1, "height": 1}]
            if "caption" in params:
                message["caption"] = params["caption"]
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0))
        timeout = float(params.get("timeout", 0))
        updates: list[dict[str, Any]] = []
        try:
            first = await asyncio.wait_for(self._updates.get(), timeout) if timeout else None
        except TimeoutError:
            return []
        if first is not None:
            updates.append(first)
        while not self._updates.empty():
            updates.append(self._updates.get_nowait())
        return [update for update in updates if update["update_id"] >= offset]


async def _params(request: Request) -> dict[str, Any]:
    # PTB posts form fields; objects (reply_markup, allowed_updates, ...) as JSON strings.
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()
        return dict(json.loads(body)) if body else {}
    form = await request.form()
    params: dict[str, Any] = {}
    for key, value in form.items():
        text = value if isinstance(value, str) else "<file>"
        params[key] = json.loads(text) if key in JSON_FIELDS else text
    return params


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)


def text_update(update_id: int, chat_id: int, text: str, message_id: int = 1) -> dict[str, Any]:
    """A private text message update, as Telegram sends it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Amina"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Amina"},
            "text": text,
        },
    }


def callback_update(
    update_id: int, chat_id: int, data: str, *, message_id: int, query_id: str = "q1"
) -> dict[str, Any]:
    """A button press (callback_query) on message `message_id`, as Telegram sends it."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "chat_instance": "ci",
            "from": {"id": chat_id, "is_bot": False, "first_name": "Amina"},
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": "Amina"},
                "from": BOT_USER,
                "text": "question",
            },
        },
    }
