"""Signed Twilio SMS webhooks per second against `learnbot serve`, and against a bare endpoint.

    .venv/bin/python bench/webhooks.py [--learners 1000] [--seconds 10] [--concurrency 32]
                                       [--runs 3]

Needs nothing beyond the test extra (aiohttp comes with twilio). Everything runs on 127.0.0.1:

- a fake Twilio REST API (tests/fakes/twilio.py) in its own process, so the bot's replies
  really go out through the twilio SDK;
- `learnbot serve` (one uvicorn worker, a fresh SQLite file, LEARNBOT_DEMO=1, Twilio enabled,
  TWILIO_SMS_MPS=100 as on a short code,
  with fake credentials and TWILIO_API_URL pointing at the fake) in its own process;
- a bare Starlette app answering empty TwiML under the same uvicorn settings, its own process;
- the load generator here: asyncio + aiohttp, `--concurrency` requests in flight (closed loop).

First `--learners` numbers join (JOIN DEMO, language 1, three SKIPs: not timed beyond a
figure). Then each run posts, for `--seconds`, signed webhooks from random learners (HELP,
PROGRESS, answers 1/2/3, each with a new MessageSid) to learnbot, then the same bodies to the
bare endpoint. Prints each run and the medians: requests/s, p50 and p99 latency, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TOKEN = "bench-auth-token"
ACCOUNT = "AC" + "0" * 32
PUBLIC_URL = "https://learnbot.bench.example"
PATH = "/webhooks/twilio/sms"
TARGET_RPS = 500.0
TARGET_P99_MS = 50.0

FAKE_TWILIO = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from tests.fakes.twilio import FakeTwilio
uvicorn.run(FakeTwilio().app, host="127.0.0.1", port={port}, log_level="warning")
"""
BARE = """
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

async def sms(request):
    await request.form()
    return Response(TWIML, media_type="text/xml")

app = Starlette(routes=[Route("/webhooks/twilio/sms", sms, methods=["POST"])])
# The same uvicorn settings as `learnbot serve` (bot/runtime.py).
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="info")
"""


@dataclass(frozen=True, slots=True)
class Figures:
    """One timed phase."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Webhooks:
    """Signed inbound-SMS bodies, as Twilio would post them to the public URL."""

    def __init__(self, learners: int) -> None:
        self.validator = RequestValidator(TOKEN)
        self.numbers = [f"+2547{n:08d}" for n in range(learners)]
        self._sid = 0

    def body(self, number: str, text: str) -> tuple[bytes, dict[str, str]]:
        self._sid += 1
        params = {
            "MessageSid": f"SM{self._sid:032d}",
            "AccountSid": ACCOUNT,
            "From": number,
            "To": "+15550001111",
            "Body": text,
            "NumMedia": "0",
        }
        signature = self.validator.compute_signature(PUBLIC_URL + PATH, params)
        headers = {
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return urlencode(params).encode(), headers


async def post_all(
    session: aiohttp.ClientSession,
    url: str,
    bodies: list[tuple[bytes, dict[str, str]]],
    concurrency: int,
    seconds: float | None,
) -> Figures:
    """Post bodies with `concurrency` in flight, until they run out or `seconds` pass."""
    latencies: list[float] = []
    errors = 0
    position = 0
    deadline = None if seconds is None else time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal position, errors
        while position < len(bodies) and (deadline is None or time.perf_counter() < deadline):
            data, headers = bodies[position]
            position += 1
            started = time.perf_counter()
            try:
                async with session.post(url, data=data, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1  # a dropped connection is an error, not the end of the run
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Figures(
        requests=len(latencies),
        errors=errors,
        seconds=elapsed,
        p50_ms=1000 * latencies[len(latencies) // 2],
        p99_ms=1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    )


async def wait_ready(
    session: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes]
) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {process.returncode}")
        try:
            async with session.get(url) as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url}: not ready after 30 s")


def start(args: list[str], env: dict[str, str] | None, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)


def show(label: str, figures: Figures) -> None:
    print(
        f"  {label:<9} {figures.rps:8.0f} req/s   p50 {figures.p50_ms:6.1f} ms   "
        f"p99 {figures.p99_ms:6.1f} ms   ({figures.requests} requests, {figures.errors} errors)"
    )


async def bench(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="learnbot-bench-"))
    fake_port, bot_port, bare_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "LEARNBOT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "LEARNBOT_HOST": "127.0.0.1",
        "LEARNBOT_PORT": str(bot_port),
        "LEARNBOT_PUBLIC_URL": PUBLIC_URL,
        "LEARNBOT_DEMO": "1",
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_SMS_FROM": "+15550001111",
        "TWILIO_SMS_MPS": "100",  # a short code: replies leave as fast as the outbox sends
        "TWILIO_API_URL": f"http://127.0.0.1:{fake_port}",
    }
    for name in ("TWILIO_MESSAGING_SERVICE_SID", "TWILIO_WHATSAPP_FROM", "TELEGRAM_BOT_TOKEN"):
        env.pop(name, None)
    learnbot = [str(Path(PYTHON).with_name("learnbot")), "serve"]
    processes = [
        start(
            [PYTHON, "-c", FAKE_TWILIO.format(root=str(ROOT), port=fake_port)],
            None,
            workdir / "fake.log",
        ),
        start(learnbot, env, workdir / "serve.log"),
        start([PYTHON, "-c", BARE.format(port=bare_port)], None, workdir / "bare.log"),
    ]
    print(f"logs and database in {workdir}")
    bot_url = f"http://127.0.0.1:{bot_port}{PATH}"
    bare_url = f"http://127.0.0.1:{bare_port}{PATH}"
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_ready(session, f"http://127.0.0.1:{fake_port}/", processes[0])
            await wait_ready(session, f"http://127.0.0.1:{bot_port}/healthz", processes[1])
            await wait_ready(session, f"http://127.0.0.1:{bare_port}/", processes[2])
            hooks = Webhooks(args.learners)
            # Join: each learner's five messages in order (its messages are a round apart).
            join = [
                hooks.body(number, text)
                for text in ("JOIN DEMO", "1", "SKIP", "SKIP", "SKIP")
                for number in hooks.numbers
            ]
            joined = await post_all(
                session, bot_url, join, min(args.concurrency, args.learners), None
            )
            print(f"join phase: {args.learners} learners x 5 messages")
            show("learnbot", joined)
            rng = random.Random(7)
            texts = ("HELP", "PROGRESS", "1", "2", "3")
            ours: list[Figures] = []
            bare: list[Figures] = []
            for run in range(1, args.runs + 1):
                # More bodies than can be posted in the time: the clock ends the phase.
                count = int(args.seconds * 4000)
                bodies = [
                    hooks.body(rng.choice(hooks.numbers), rng.choice(texts)) for _ in range(count)
                ]
                print(f"run {run}: {args.seconds:.0f} s each, {args.concurrency} in flight")
                ours.append(
                    await post_all(session, bot_url, bodies, args.concurrency, args.seconds)
                )
                show("learnbot", ours[-1])
                bare.append(
                    await post_all(session, bare_url, bodies, args.concurrency, args.seconds)
                )
                show("bare", bare[-1])
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    rps = statistics.median(f.rps for f in ours)
    p50 = statistics.median(f.p50_ms for f in ours)
    p99 = statistics.median(f.p99_ms for f in ours)
    bare_rps = statistics.median(f.rps for f in bare)
    bare_p99 = statistics.median(f.p99_ms for f in bare)
    errors = sum(f.errors for f in ours)
    print(f"medians of {args.runs} runs:")
    print(f"  learnbot {rps:8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   errors {errors}")
    print(f"  bare     {bare_rps:8.0f} req/s   p99 {bare_p99:6.1f} ms")
    print(f"  ratio learnbot/bare: {rps / bare_rps:.2f}")
    met = rps >= TARGET_RPS and p99 <= TARGET_P99_MS and errors == 0
    print(
        f"target >= {TARGET_RPS:.0f} req/s with p99 <= {TARGET_P99_MS:.0f} ms: "
        + ("met" if met else "NOT met")
    )
    return 0 if met else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    sys.exit(asyncio.run(bench(parser.parse_args())))


if __name__ == "__main__":
    main()
