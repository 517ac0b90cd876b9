"""Telegram send rate against a fake Bot API that enforces Telegram's limits with 429s.

    .venv/bin/python bench/rate.py [--messages 3000] [--chats 300] [--workers 64] [--runs 1]

A fake Bot API runs in its own process on 127.0.0.1. It accepts a sendMessage only if
fewer than 30 messages were accepted in the last second (sliding window) and none to the
same chat in the last second; otherwise it answers 429 with retry_after, as Telegram does.
The bench sends `--messages` messages to `--chats` chats, in a shuffled order (seeded),
through `TelegramChannel` (python-telegram-bot) and `limiter_for(TELEGRAM)`, with
`--workers` concurrent senders as the dispatcher runs them; a 429 pauses the limiter for
retry_after and requeues the message. Figures: the accepted rate measured by the fake
(first to last accepted message) as a fraction of 30/s (target >= 0.95), the number of
429s (target 0), and the client's wall-clock rate. Each run is bounded by `--timeout`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import socket
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.channels.base import SendError  # noqa: E402
from bot.channels.telegram import TelegramChannel  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.domain import ChannelName, RenderedMessage  # noqa: E402
from scheduler.ratelimit import limiter_for  # noqa: E402

TOKEN = "123456:BENCH"
LIMIT = 30  # messages per second per bot
CHAT_INTERVAL = 1.0  # seconds between two messages to one chat
WINDOW = 1.0
RETRY_AFTER = 1


# --- the fake provider, in its own process ----------------------------------------------


class Limits:
    """Telegram's limits as a provider would measure them, on arrival."""

    def __init__(self) -> None:
        self.accepted: deque[float] = deque()  # arrival times within the last WINDOW
        self.last_to_chat: dict[str, float] = {}
        self.first: float | None = None
        self.last: float | None = None
        self.count = 0
        self.rejected = 0
        self.rejected_chat = 0  # of which: the chat's own limit

    def admit(self, chat_id: str, now: float) -> bool:
        while self.accepted and self.accepted[0] <= now - WINDOW:
            self.accepted.popleft()
        previous = self.last_to_chat.get(chat_id)
        chat_busy = previous is not None and now - previous < CHAT_INTERVAL
        if len(self.accepted) >= LIMIT or chat_busy:
            self.rejected += 1
            self.rejected_chat += chat_busy
            return False
        self.accepted.append(now)
        self.last_to_chat[chat_id] = now
        self.first = now if self.first is None else self.first
        self.last = now
        self.count += 1
        return True


def serve_fake(sock: socket.socket) -> None:
    """Run the rate-limited fake Bot API on an already bound socket (child process)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    limits = Limits()
    message_ids = iter(range(1, 10**9))

    async def send_message(request: Request) -> JSONResponse:
        now = time.monotonic()  # before reading the body: arrival, as the provider sees it
        form = await request.form()
        chat_id = str(form["chat_id"])
        if not limits.admit(chat_id, now):
            return JSONResponse(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {RETRY_AFTER}",
                    "parameters": {"retry_after": RETRY_AFTER},
                },
                status_code=429,
            )
        message = {
            "message_id": next(message_ids),
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            "text": str(form.get("text", "")),
        }
        return JSONResponse({"ok": True, "result": message})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "accepted": limits.count,
                "rejected": limits.rejected,
                "rejected_chat": limits.rejected_chat,
                "first": limits.first,
                "last": limits.last,
            }
        )

    app = Starlette(
        routes=[
            Route(f"/bot{TOKEN}/sendMessage", send_message, methods=["POST"]),
            Route("/stats", stats, methods=["GET"]),
        ]
    )
    config = uvicorn.Config(app, log_level="error", lifespan="off", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


# --- the sender, as the dispatcher runs it -----------------------------------------------


@dataclass(frozen=True, slots=True)
class RunResult:
    sent: int
    provider_rate: float  # accepted messages per second, measured by the fake
    client_rate: float  # messages per second, wall clock of the sender
    got_429: int
    rejected_by_fake: int
    rejected_for_chat: int  # of those, for the per-chat limit
    seconds: float


async def one_run(port: int, messages: int, chats: int, workers: int, seed: int) -> RunResult:
    import httpx

    base = f"http://127.0.0.1:{port}"
    settings = Settings(telegram_bot_token=TOKEN, telegram_api_url=f"{base}/bot")
    channel = TelegramChannel.from_settings(settings)
    limiter = limiter_for(ChannelName.TELEGRAM, settings)
    rng = random.Random(seed)
    chat_ids = [str(100000 + n) for n in range(chats)]
    order = [chat_ids[n % chats] for n in range(messages)]
    rng.shuffle(order)
    queue: asyncio.Queue[RenderedMessage] = asyncio.Queue()
    for n, chat in enumerate(order):
        queue.put_nowait(RenderedMessage(ChannelName.TELEGRAM, chat, f"Lesson part {n}"))
    got_429 = 0
    sent = 0

    async def worker() -> None:
        nonlocal got_429, sent
        while True:
            try:
                message = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await limiter.acquire(message.address)
            try:
                await channel.send(message)
                sent += 1
            except SendError as error:
                if error.retry_after is not None:
                    got_429 += 1
                    limiter.pause(error.retry_after)
                queue.put_nowait(message)  # as the dispatcher would: try again later

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(workers)))
    seconds = time.monotonic() - start
    await channel.aclose()
    async with httpx.AsyncClient() as http:
        stats: dict[str, Any] = (await http.get(f"{base}/stats")).json()
    span = (stats["last"] or 0.0) - (stats["first"] or 0.0)
    provider_rate = (stats["accepted"] - 1) / span if span > 0 else 0.0
    return RunResult(
        sent=sent,
        provider_rate=provider_rate,
        client_rate=sent / seconds,
        got_429=got_429,
        rejected_by_fake=int(stats["rejected"]),
        rejected_for_chat=int(stats["rejected_chat"]),
        seconds=seconds,
    )


def run_with_fake(messages: int, chats: int, workers: int, seed: int, timeout: float) -> RunResult:
    """Start a fresh fake in a child process, run one bench against it, stop it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    process = multiprocessing.get_context("fork").Process(target=serve_fake, args=(sock,))
    process.start()
    try:
        _wait_for_port(port)
        return asyncio.run(
            asyncio.wait_for(one_run(port, messages, chats, workers, seed), timeout=timeout)
        )
    finally:
        process.terminate()
        process.join(10)
        sock.close()


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the fake Bot API did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--chats", type=int, default=300)
    parser.add_argument("--workers", type=int, default=64, help="concurrent senders")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run at most")
    args = parser.parse_args()
    print(
        f"{args.messages} messages to {args.chats} chats, {args.workers} workers; "
        f"fake limits {LIMIT}/s overall (sliding {WINDOW:g} s), 1 per {CHAT_INTERVAL:g} s per chat"
    )
    results: list[RunResult] = []
    for run in range(1, args.runs + 1):
        result = run_with_fake(
            args.messages, args.chats, args.workers, args.seed + run - 1, args.timeout
        )
        results.append(result)
        print(
            f"run {run}: {result.sent} sent in {result.seconds:.1f} s; "
            f"provider rate {result.provider_rate:.2f}/s = {result.provider_rate / LIMIT:.3f} "
            f"of the limit; client {result.client_rate:.2f}/s; "
            f"429s received {result.got_429} (rejected by the fake {result.rejected_by_fake}, "
            f"{result.rejected_for_chat} of them for the per-chat limit)"
        )
    if len(results) > 1:
        fraction = statistics.median(r.provider_rate / LIMIT for r in results)
        print(
            f"median: {fraction:.3f} of the limit; "
            f"429s {statistics.median(r.got_429 for r in results):g} "
            f"(max {max(r.got_429 for r in results)})"
        )


if __name__ == "__main__":
    main()
