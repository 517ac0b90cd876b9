"""Each sandbox client is rate-limited, and a flood of new addresses evicts no conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.base import Channel
from bot.channels.sandbox import SandboxChannel
from bot.domain import ChannelName, InboundMessage, OutboundMessage
from bot.i18n import UiCatalogs
from bot.web.app import create_app
from bot.web.sandbox_limits import Rate, SandboxLimits, TokenBuckets
from tests.web.conftest import FakeDialogue

EARLY = "web-early-visitor-01"
# Documentation ranges (RFC 5737, RFC 3849): the requests never leave the process anyway.
EARLY_CLIENT = "192.0.2.1"
FLOOD_CLIENT = "198.51.100.7"

Connect = Callable[[str], httpx.AsyncClient]


def echo(message: InboundMessage) -> list[OutboundMessage]:
    return [OutboundMessage(message.channel, message.address, f"got {message.text}", "en")]


@pytest.fixture
def make_app(
    dialogue: FakeDialogue, sqlite_engine: AsyncEngine, ui: UiCatalogs
) -> Callable[..., Connect]:
    """An app with these limits and sandbox; returns a function that connects as a client IP."""
    dialogue.reply = echo

    def build(sandbox: SandboxChannel, limits: SandboxLimits) -> Connect:
        channels: dict[ChannelName, Channel] = {ChannelName.SANDBOX: sandbox}
        app = create_app(
            dialogue=dialogue,
            channels=channels,
            engine=sqlite_engine,
            ui=ui,
            sandbox_enabled=True,
            sandbox_limits=limits,
        )

        def connect(ip: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(ip, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://testserver")

        return connect

    return build


@asynccontextmanager
async def as_client(connect: Connect, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    async with connect(ip) as http:
        yield http


async def send(http: httpx.AsyncClient, address: str, text: str = "hi") -> httpx.Response:
    return await http.post("/sandbox/messages", json={"address": address, "text": text})


async def poll(http: httpx.AsyncClient, address: str = EARLY) -> httpx.Response:
    params = {"address": address, "after": "0", "timeout": "0"}
    return await http.get("/sandbox/messages", params=params)


async def test_a_client_over_its_rate_gets_429_with_retry_after_in_plain_words(
    make_app: Callable[..., Connect],
) -> None:
    limits = SandboxLimits(per_client=Rate(burst=5, per_second=0.5))
    connect = make_app(SandboxChannel(), limits)

    async with as_client(connect, FLOOD_CLIENT) as flood, as_client(connect, EARLY_CLIENT) as other:
        statuses = [(await poll(flood)).status_code for _ in range(5)]
        refused = await poll(flood)
        refused_post = await send(flood, EARLY)
        elsewhere = await poll(other)

    assert statuses == [200] * 5
    assert refused.status_code == 429 and refused_post.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.json() == {
        "error": "too many requests from your connection; try again in 2 s",
        "field": None,
    }
    assert elsewhere.status_code == 200


async def test_one_conversation_over_its_rate_gets_429_and_others_go_on(
    make_app: Callable[..., Connect], dialogue: FakeDialogue
) -> None:
    limits = SandboxLimits(messages_per_address=Rate(burst=3, per_second=0.2))
    connect = make_app(SandboxChannel(), limits)

    async with as_client(connect, FLOOD_CLIENT) as http:
        statuses = [(await send(http, EARLY, f"m{n}")).status_code for n in range(4)]
        other = await send(http, "web-second-tab-0001")

    assert statuses == [200, 200, 200, 429]
    assert other.status_code == 200
    assert [m.text for m in dialogue.received] == ["m0", "m1", "m2", "hi"]


async def test_ipv6_clients_are_counted_by_their_64(make_app: Callable[..., Connect]) -> None:
    limits = SandboxLimits(per_client=Rate(burst=2, per_second=0.01))
    connect = make_app(SandboxChannel(), limits)

    statuses = []
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::3:4", "2001:db8:0:1::1"):
        async with as_client(connect, host) as http:
            statuses.append((await poll(http)).status_code)

    assert statuses == [200, 200, 429, 200]


async def test_a_flood_of_new_addresses_from_one_client_stops_and_evicts_nothing(
    make_app: Callable[..., Connect], dialogue: FakeDialogue
) -> None:
    sandbox = SandboxChannel()
    connect = make_app(sandbox, SandboxLimits())  # the defaults `learnbot serve` uses
    async with as_client(connect, EARLY_CLIENT) as early:
        assert (await send(early, EARLY, "JOIN DEMO")).status_code == 200

    async with as_client(connect, FLOOD_CLIENT) as flood:
        statuses = [(await send(flood, f"web-flood-{n:06}")).status_code for n in range(1500)]

    # 20 new conversations per client at once (then one per 30 s): the rest are 429.
    assert statuses.count(200) == 20 and statuses.count(429) == 1480
    assert len(dialogue.received) == 1 + 20  # so at most 20 learners made in the store
    async with as_client(connect, EARLY_CLIENT) as early:
        transcript = (await poll(early)).json()["messages"]
    assert [m["text"] for m in transcript] == ["JOIN DEMO", "got JOIN DEMO"]


async def test_a_flood_from_many_clients_fills_the_sandbox_and_then_gets_503(
    make_app: Callable[..., Connect],
) -> None:
    sandbox = SandboxChannel()  # 1,000 conversations at most
    connect = make_app(sandbox, SandboxLimits())
    async with as_client(connect, EARLY_CLIENT) as early:
        assert (await send(early, EARLY, "JOIN DEMO")).status_code == 200

    statuses = []
    for n in range(1500):
        async with as_client(connect, f"203.0.{n // 250}.{n % 250 + 1}") as visitor:
            statuses.append((await send(visitor, f"web-visit-{n:06}")).status_code)

    assert statuses.count(200) == 999 and statuses.count(503) == 501
    async with as_client(connect, EARLY_CLIENT) as early:
        transcript = (await poll(early)).json()["messages"]
        again = await send(early, EARLY, "HELP")
    assert [m["text"] for m in transcript] == ["JOIN DEMO", "got JOIN DEMO"]
    assert again.status_code == 200


async def test_a_full_sandbox_answers_503_in_plain_words(
    make_app: Callable[..., Connect],
) -> None:
    connect = make_app(SandboxChannel(max_addresses=1), SandboxLimits())
    async with as_client(connect, EARLY_CLIENT) as http:
        await send(http, EARLY)
        full = await send(http, "web-one-too-many-01")

    assert full.status_code == 503
    assert full.headers["Retry-After"] == "60"
    assert full.json()["error"] == "the sandbox is full; try again in a few minutes"


def test_a_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(Rate(burst=2, per_second=0.5), clock=lambda: now[0])

    taken = [buckets.take("a"), buckets.take("a"), buckets.take("a")]
    now[0] = 2.0
    later = buckets.take("a")

    assert taken == [0.0, 0.0, 2.0]
    assert later == 0.0


def test_buckets_forget_the_least_recently_used_keys_past_their_cap() -> None:
    buckets = TokenBuckets(Rate(burst=1, per_second=0.001), max_keys=2, clock=lambda: 0.0)
    buckets.take("a")
    buckets.take("b")
    buckets.take("c")  # forgets "a"

    assert buckets.take("a") == 0.0
    assert buckets.take("c") > 0
