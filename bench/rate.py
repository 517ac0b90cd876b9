"""Telegram send rate against a fake Bot API that enforces Telegram's limits with 429s.

    .venv/bin/python bench/rate.py [--messages 3000] [--chats 300] [--workers 64] [--runs 1]
    .venv/bin/python bench/rate.py --processes 1 3 [--messages 900] [--runs 3] [--database URL]

A fake Bot API runs in its own process on 127.0.0.1. It accepts a sendMessage only if
fewer than 30 messages were accepted in the last second (sliding window) and none to the
same chat in the last second; otherwise it answers 429 with retry_after, as Telegram does.
The bench sends `--messages` messages to `--chats` chats, in a shuffled order (seeded),
through `TelegramChannel` (python-telegram-bot) and `limiter_for(TELEGRAM)`, with
`--workers` concurrent senders as the dispatcher runs them; a 429 pauses the limiter for
retry_after and requeues the message. Figures: the accepted rate measured by the fake
(first to last accepted message) as a fraction of 30/s (target >= 0.95), the number of
429s (target 0), and the client's wall-clock rate. Each run is bounded by `--timeout`.

With `--processes N [N ...]`, each run puts the messages into the outbox of a new database
on the PostgreSQL server `--database` names (dropped afterwards), as Telegram replies due in
the shuffled order, and starts N real dispatcher processes on it (`Dispatcher`, the
production limiter `limiter_for(TELEGRAM, settings, engine)`, which shares the rate through
the database, and the claim's per-chat rule), each a separate Python process; the run ends
when every delivery is sent. Figures as above, plus the shortest gap between two accepted
messages to one chat (1 s at least: the per-chat limit held) and each process's share.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.channels.base import SendError  # noqa: E402
from bot.channels.telegram import TelegramChannel  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.domain import ChannelName, RenderedMessage  # noqa: E402
from scheduler.ratelimit import HEADROOM, limiter_for  # noqa: E402

DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1/test"

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
        self.min_chat_gap: float | None = None  # shortest gap between two accepted, one chat
        self.times: list[float] = []  # every accepted arrival

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
        self.times.append(now)
        if previous is not None:
            gap = now - previous
            self.min_chat_gap = gap if self.min_chat_gap is None else min(self.min_chat_gap, gap)
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
                "min_chat_gap": limits.min_chat_gap,
                "steady_rate": _steady_rate(limits.times),
                "ends": _ends(limits.times),
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


def _steady_rate(times: list[float]) -> float | None:
    """Accepted per second between the 10th and the 90th percentile of arrivals."""
    if len(times) < 20:
        return None
    first, last = len(times) // 10, len(times) * 9 // 10
    return (last - first) / (times[last] - times[first])


def _ends(times: list[float]) -> tuple[float, float] | None:
    """Seconds spent on the first and on the last 10% of the arrivals."""
    if len(times) < 20:
        return None
    tenth = len(times) // 10
    return (times[tenth] - times[0], times[-1] - times[-1 - tenth])


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
    min_chat_gap: float | None = None  # seconds, as the fake measured on arrival
    shares: tuple[int, ...] = ()  # messages sent by each dispatcher process
    late_slots: tuple[int, ...] = ()  # shared slots each process gave up (woken too late)
    steady_rate: float | None = None  # accepted/s over the middle 80% of the messages
    ends: tuple[float, ...] | None = None  # seconds spent on the first and last 10%


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
        min_chat_gap=stats["min_chat_gap"],
    )


# --- several dispatcher processes on one PostgreSQL database -----------------------------


class _NoLessons:
    """The bench's outbox holds ready-made replies only: no lesson is ever prepared."""

    def prepare_lesson(self, target: Any, now: Any) -> None:
        return None

    def prepare_reminder(self, target: Any, question_index: Any) -> None:
        return None

    def whatsapp_template(self, target: Any, prepared: Any) -> None:
        return None


def _settings(port: int) -> Settings:
    return Settings(telegram_bot_token=TOKEN, telegram_api_url=f"http://127.0.0.1:{port}/bot")


async def dispatch_forever(database_url: str, port: int) -> None:
    """One dispatcher process, as `learnbot serve` runs it, until SIGTERM."""
    from bot.store.db import create_engine
    from scheduler.dispatcher import Dispatcher, RetryPolicy

    settings = _settings(port)
    engine = create_engine(database_url)
    channel = TelegramChannel.from_settings(settings)
    limiter = limiter_for(ChannelName.TELEGRAM, settings, engine)
    dispatcher = Dispatcher(
        engine,
        {ChannelName.TELEGRAM: channel},
        _NoLessons(),
        limiters={ChannelName.TELEGRAM: limiter},
        retry=RetryPolicy(max_attempts=50),
        lease=timedelta(seconds=30),
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, dispatcher.stop)
    sent = 0
    send = channel.send

    async def counted(message: RenderedMessage) -> Any:
        nonlocal sent
        result = await send(message)
        sent += 1
        return result

    channel.send = counted  # type: ignore[method-assign]
    try:
        await dispatcher.run_forever(idle_seconds=0.1)
    finally:
        print(f"late {limiter.slots_given_up}", flush=True)
        print(f"sent {sent}", flush=True)
        await channel.aclose()
        await engine.dispose()


async def _seed(database_url: str, messages: int, chats: int, seed: int) -> None:
    from sqlalchemy import insert

    from bot.domain import DeliveryKind, OutboundMessage
    from bot.store.db import create_engine, utcnow
    from bot.store.deliveries import encode_messages
    from bot.store.tables import deliveries, learners

    rng = random.Random(seed)
    chat_ids = [str(100000 + n) for n in range(chats)]
    order = [chat_ids[n % chats] for n in range(messages)]
    rng.shuffle(order)
    now = utcnow()
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            ids = {}
            for n, chat in enumerate(chat_ids):
                result = await conn.execute(
                    insert(learners).returning(learners.c.id),
                    {
                        "learner_key": f"bench-{n}",
                        "channel": "telegram",
                        "address": chat,
                        "locale": "en",
                        "status": "active",
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                ids[chat] = result.scalar_one()
            rows = []
            for n, chat in enumerate(order):
                message = OutboundMessage(ChannelName.TELEGRAM, chat, f"Lesson part {n}", "en")
                rows.append(
                    {
                        "learner_id": ids[chat],
                        "lesson_id": f"reply-{n}",
                        "kind": DeliveryKind.REPLY.value,
                        "channel": "telegram",
                        "status": "pending",
                        "priority": 0,
                        "payload": encode_messages([message]),
                        # Due in the shuffled order, all due now.
                        "due_at": now - timedelta(milliseconds=messages - n),
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            await conn.execute(insert(deliveries), rows)
    finally:
        await engine.dispose()


async def _sent(database_url: str) -> int:
    from sqlalchemy import func, select

    from bot.store.db import create_engine
    from bot.store.tables import deliveries

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).where(deliveries.c.status == "sent")
            return int((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


def run_processes(
    processes: int, messages: int, chats: int, seed: int, timeout: float, server_url: str
) -> RunResult:
    """One run: a fresh database and fake, `processes` dispatchers, until all is sent."""
    import asyncpg
    import httpx
    from sqlalchemy.engine import make_url

    from bot.store import migrate

    url = make_url(server_url)
    name = f"learnbot_bench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, database=url.database
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    database_url = url.set(database=name).render_as_string(hide_password=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    fake = multiprocessing.get_context("fork").Process(target=serve_fake, args=(sock,))
    workers: list[subprocess.Popen[bytes]] = []
    try:
        migrate.upgrade(database_url)
        asyncio.run(_seed(database_url, messages, chats, seed))
        fake.start()
        _wait_for_port(port)
        logs = [Path(f"/tmp/{name}-{n}.log") for n in range(processes)]
        command = [sys.executable, __file__, "--dispatch", database_url, str(port)]
        start = time.monotonic()
        for log in logs:
            with log.open("wb") as out:
                workers.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT))
        while asyncio.run(_sent(database_url)) < messages:
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"not all sent within {timeout:g} s")
            if any(worker.poll() is not None for worker in workers):
                raise RuntimeError(f"a dispatcher process ended: see {logs}")
            time.sleep(0.25)
        seconds = time.monotonic() - start
        stats: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/stats").json()
        _stop(workers)
        shares = tuple(_share(log) for log in logs)
        late = tuple(_late(log) for log in logs)
        for log in logs:
            log.unlink(missing_ok=True)
    finally:
        _stop(workers)
        if fake.is_alive():
            fake.terminate()
            fake.join(10)
        sock.close()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    span = (stats["last"] or 0.0) - (stats["first"] or 0.0)
    return RunResult(
        sent=messages,
        provider_rate=(stats["accepted"] - 1) / span if span > 0 else 0.0,
        client_rate=messages / seconds,
        got_429=int(stats["rejected"]),
        rejected_by_fake=int(stats["rejected"]),
        rejected_for_chat=int(stats["rejected_chat"]),
        seconds=seconds,
        min_chat_gap=stats["min_chat_gap"],
        shares=shares,
        late_slots=late,
        steady_rate=stats["steady_rate"],
        ends=tuple(stats["ends"]) if stats.get("ends") else None,
    )


def _seconds_pair(ends: tuple[float, ...] | None) -> str:
    return "-" if not ends else " and ".join(f"{value:.2f} s" for value in ends)


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()


def _late(log: Path) -> int:
    """Shared slots a dispatcher process gave up, woken too late (its line `late N`)."""
    for line in log.read_text().splitlines():
        if line.startswith("late "):
            return int(line.split()[1])
    return -1


def _share(log: Path) -> int:
    """The messages a dispatcher process says it sent (its last line: `sent N`)."""
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("sent "):
            return int(line.split()[1])
    return -1


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
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        help="dispatcher processes on one PostgreSQL database (each count is a series of runs)",
    )
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="PostgreSQL server URL")
    parser.add_argument("--dispatch", nargs=2, help=argparse.SUPPRESS)  # a worker: URL PORT
    args = parser.parse_args()
    if args.dispatch:
        asyncio.run(dispatch_forever(args.dispatch[0], int(args.dispatch[1])))
        return
    if args.processes:
        run_series(args)
        return
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


def run_series(args: argparse.Namespace) -> None:
    """`--runs` runs for each count of `--processes`, interleaved, with their medians."""
    print(
        f"{args.messages} messages to {args.chats} chats through the outbox, dispatcher "
        f"processes {args.processes} on one PostgreSQL; fake limits {LIMIT}/s overall "
        f"(sliding {WINDOW:g} s), 1 per {CHAT_INTERVAL:g} s per chat"
    )
    results: dict[int, list[RunResult]] = {n: [] for n in args.processes}
    for run in range(1, args.runs + 1):
        for processes in args.processes:
            result = run_processes(
                processes,
                args.messages,
                args.chats,
                args.seed + run - 1,
                args.timeout,
                args.database,
            )
            results[processes].append(result)
            gap = "-" if result.min_chat_gap is None else f"{result.min_chat_gap:.3f} s"
            print(
                f"run {run}, {processes} process(es): {result.sent} sent in "
                f"{result.seconds:.1f} s; provider rate {result.provider_rate:.2f}/s = "
                f"{result.provider_rate / LIMIT:.3f} of the limit (middle 80% of the messages: "
                f"{(result.steady_rate or 0.0) / LIMIT:.3f}); 429s {result.got_429} "
                f"({result.rejected_for_chat} for the per-chat limit); shortest gap to one "
                f"chat {gap}; shares {list(result.shares)}; slots given up "
                f"{list(result.late_slots)}; first and last 10% took "
                f"{_seconds_pair(result.ends)} (at the aim: "
                f"{0.1 * result.sent / (LIMIT * HEADROOM):.2f} s)",
                flush=True,
            )
    for processes, series in results.items():
        gaps = [r.min_chat_gap for r in series if r.min_chat_gap is not None]
        print(
            f"median, {processes} process(es): "
            f"{statistics.median(r.provider_rate / LIMIT for r in series):.3f} of the limit; "
            f"429s {statistics.median(r.got_429 for r in series):g} "
            f"(max {max(r.got_429 for r in series)}); shortest gap to one chat "
            f"{min(gaps) if gaps else float('nan'):.3f} s (per-chat max "
            f"{1 / min(gaps) if gaps else float('nan'):.2f}/s)"
        )


if __name__ == "__main__":
    main()
