"""Property-based fuzzing of every provider route and /healthz, authenticated and not.

The real app (`create_app` with the Telegram and Twilio routes, the real Dialogue, the shipped
course, replies into the outbox as in production) on a migrated SQLite file, and with fewer
examples on PostgreSQL, which enforces column lengths; Telegram's side is the fake Bot API on
loopback. Every request, whatever it holds, must be answered below 500, leave no ERROR record
and no traceback in the log, and store nothing unless authenticated; afterwards the SQLite
file passes `PRAGMA integrity_check` and `foreign_key_check`, and every SMS or WhatsApp
learner has an E.164 address.

Hypothesis runs derandomized (the same examples on every run and every machine: `make test`
in CI never fails on a seed nobody can replay, and a failure here is reproduced by running the
test again) with no example database (nothing written to the tree); a new find is shrunk and
printed like any hypothesis failure.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from bot.channels.base import Channel
from bot.channels.phone import e164
from bot.channels.sandbox import SandboxChannel
from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.dialogue import Dialogue
from bot.domain import ChannelName
from bot.i18n import UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import load_courses
from bot.runtime import DEMO_JOIN_CODE, OUTBOX_CHANNELS, _pathway_order
from bot.store import migrate
from bot.store.db import create_engine
from bot.web.app import create_app
from bot.web.telegram import SECRET_HEADER, TelegramStaffCommands, telegram_routes
from bot.web.twilio import twilio_routes
from tests.conftest import _postgres_database
from tests.fakes.telegram import FakeBotApi, callback_update, text_update

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 2000  # 7 to 13 s on this 2-core machine (PostgreSQL: 500 in 4 s)
EXAMPLES_POSTGRES = 500
SECRET = "fuzz-secret_token"
TWILIO_TOKEN = "fuzz-auth-token"
PUBLIC_URL = "https://learnbot.example.org"
TELEGRAM = "/webhooks/telegram"
TWILIO = ("/webhooks/twilio/sms", "/webhooks/twilio/whatsapp", "/webhooks/twilio/status")
OTHER_PATHS = ("/", "/webhooks", "/webhooks/twilio/voice", "/webhooks/telegram/x", "/static/a")
FORM = "application/x-www-form-urlencoded"
VALIDATOR = RequestValidator(TWILIO_TOKEN)
# What an echoed exception looks like: "ValueError(...)", "KeyError: 'chat'", a traceback.
EXCEPTION_REPR = re.compile(r"Traceback|Exception|[A-Za-z]*Error\b|\\x[0-9a-f]{2}")

# Hypothesis leans towards the first choice of a sampled_from: each list starts with what a
# provider really sends, so most examples get past the door and reach the dialogue.

# --- values ------------------------------------------------------------------------------------

# Inputs that broke webhooks before, and the usual suspects of each type.
ODD = st.sampled_from(
    [
        None, True, False, 0, -1, 2**31, 2**53, 10**20, 10**100, 1e20, -1e308, 0.5, "",
        " ", "\u00a0", "²", "١٢", "\ud800", "\x00", "a" * 5000, "é" * 40, [], {}, [[[[]]]],
        {"id": 1}, "/start DEMO", "/start", "/push DEMO agile-teams", "/push", "lang:en",
        "ans:1", "ans:", "role:technical", "STOP", "JOIN DEMO", "1", "whatsapp:",
    ]
)  # fmt: skip
# What a learner types, shrunk to the characters commands and answers are parsed by.
WORDS = st.text(alphabet=" \t\n\u00a0\u2028/@:_1Aaé", max_size=6) | st.text(max_size=12) | ODD
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | ODD
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
REAL_UPDATES = [
    text_update(1, 5550100, "/start DEMO"),
    text_update(2, 5550100, "1"),
    text_update(3, 5550101, "/push DEMO agile-teams"),
    callback_update(4, 5550100, "lang:en", message_id=3),
    callback_update(5, 5550100, "ans:1", message_id=4),
]
PHONES = ["+254712345678", "+254733000111", "+15550001111", "+447700900123"]
SENDERS = (
    st.sampled_from(PHONES)
    | st.sampled_from(PHONES).map(lambda p: "whatsapp:" + p)
    | st.sampled_from(["hello", "whatsapp:", "whatsapp:hello", "12345", "+1", "", "+２５４７"])
    | st.text(max_size=20)
)
BODIES = (
    st.sampled_from(["JOIN DEMO", "1", "2", "A", "STOP", "START", "HELP", "NEXT", "SKIP", ""])
    | st.text(max_size=40)
    | st.just("a" * 1601)
)
SIDS = (
    st.integers(min_value=0, max_value=10**6).map(lambda n: f"SM{n:032x}")
    | st.sampled_from(["", "SM1", "MM" + "f" * 32, "SM" + "x" * 32, "²"])
    | st.text(max_size=36)
)
STATUSES = st.sampled_from(
    ["queued", "sent", "delivered", "read", "failed", "undelivered", "accepted", "sending", ""]
) | st.text(max_size=10)
ERROR_CODES = st.sampled_from(
    ["", "0", "30007", "21610", "21211", "63016", "²", "١٢", "-1", " 30005 ", "9" * 30]
) | st.text(max_size=6)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON tree: the places a mutation can hit."""
    found: list[tuple[Any, Any]] = []
    keys = node.keys() if isinstance(node, dict) else range(len(node))
    for key in list(keys):
        found.append((node, key))
        if isinstance(node[key], dict | list) and node[key]:
            found += _slots(node[key])
    return found


@st.composite
def mutated_update(draw: st.DrawFn) -> Any:
    """A real Telegram update: its text or button data replaced, then up to three fields
    deleted or replaced by any JSON."""
    update = copy.deepcopy(draw(st.sampled_from(REAL_UPDATES)))
    update["update_id"] = draw(st.integers(min_value=1, max_value=10**6))
    if draw(st.integers(min_value=0, max_value=3)) > 0:
        words = copy.deepcopy(draw(WORDS))
        if "message" in update:
            update["message"]["text"] = words
        else:
            update["callback_query"]["data"] = words
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
        slots = _slots(update)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if draw(st.booleans()) and isinstance(container, dict):
            del container[key]
        else:
            container[key] = copy.deepcopy(draw(JSON))  # ODD holds shared lists and dicts
    return update


@st.composite
def twilio_form(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Twilio's fields, each possibly missing or odd, and maybe a few unknown ones."""
    fields = {
        "MessageSid": draw(SIDS),
        "AccountSid": "AC" + "1" * 32,
        "From": draw(SENDERS),
        "To": draw(SENDERS),
        "Body": draw(BODIES),
        "NumMedia": "0",
        "MessageStatus": draw(STATUSES),
        "ErrorCode": draw(ERROR_CODES),
    }
    kept = [(k, v) for k, v in fields.items() if draw(st.integers(0, 9)) > 0]
    extra = draw(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=3))
    return kept + extra


# --- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One request, and whether it carries valid authentication for its route."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    authenticated: bool = False


@st.composite
def telegram_request(draw: st.DrawFn) -> Attempt:
    kind = draw(st.sampled_from(["update", "update", "update", "json", "bytes", "large"]))
    if kind == "update":
        body = json.dumps(draw(mutated_update())).encode()
    elif kind == "json":
        body = json.dumps(draw(JSON)).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        body = b"[" * draw(st.sampled_from([5_000, 300_000]))
    secret = draw(st.sampled_from([SECRET] * 6 + [None, "wrong", SECRET + " "]))
    content_type = draw(
        st.sampled_from(
            ["application/json"] * 6 + ["application/json; charset=utf-8", FORM, "text/plain", None]
        )
    )
    headers = {}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    if content_type is not None:
        headers["content-type"] = content_type
    method = draw(st.sampled_from(["POST"] * 9 + ["GET", "PUT"]))
    return Attempt(method, TELEGRAM, headers, body, authenticated=secret == SECRET)


@st.composite
def twilio_request(draw: st.DrawFn) -> Attempt:
    path = draw(st.sampled_from(TWILIO))
    if draw(st.integers(0, 9)) == 0:
        path += "?" + urlencode({"x": draw(st.text(max_size=5))})
    kind = draw(st.sampled_from(["form", "form", "form", "bytes", "large"]))
    if kind == "form":
        body = urlencode(draw(twilio_form())).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        body = urlencode({"Body": "a" * 70_000}).encode()
    # Signed over what the server will parse, as Twilio signs what it sends.
    form = FormData(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    signing = draw(st.sampled_from(["valid", "valid", "valid", "none", "forged", "other url"]))
    url = PUBLIC_URL + path if signing != "other url" else "http://10.0.0.1" + path
    headers = {}
    if signing != "none":
        signature = VALIDATOR.compute_signature(url, form)
        headers["X-Twilio-Signature"] = signature if signing != "forged" else signature[::-1]
    content_type = draw(
        st.sampled_from([FORM] * 6 + ["multipart/form-data; boundary=x", "application/json", None])
    )
    if content_type is not None:
        headers["content-type"] = content_type
    method = draw(st.sampled_from(["POST"] * 9 + ["GET", "DELETE"]))
    valid = signing == "valid" and content_type == FORM
    return Attempt(method, path, headers, body, authenticated=valid)


@st.composite
def other_request(draw: st.DrawFn) -> Attempt:
    path = draw(st.sampled_from(("/healthz", "/healthz", *OTHER_PATHS)))
    method = draw(st.sampled_from(["GET", "GET", "POST", "HEAD", "OPTIONS"]))
    return Attempt(method, path, {}, draw(st.binary(max_size=50)))


REQUESTS = telegram_request() | twilio_request() | other_request()


# --- the app -----------------------------------------------------------------------------------


@dataclass
class Server:
    """The app under fuzz, its engine, and the loop it runs on."""

    runner: asyncio.Runner
    http: httpx.AsyncClient
    engine: AsyncEngine
    sqlite_file: Path | None  # None on PostgreSQL

    def send(self, attempt: Attempt) -> httpx.Response:
        request = self.http.build_request(
            attempt.method, attempt.path, headers=attempt.headers, content=attempt.body
        )
        return self.runner.run(self.http.send(request))

    def query(self, sql: str) -> list[Any]:
        async def rows() -> list[Any]:
            async with self.engine.connect() as conn:
                return list((await conn.execute(text(sql))).all())

        return self.runner.run(rows())

    def stored(self) -> int:
        tables = ("learners", "processed_inbound", "events", "deliveries")
        union = " UNION ALL ".join(f"SELECT count(*) FROM {table}" for table in tables)
        return sum(row[0] for row in self.query(union))


async def _start(url: str, stack: AsyncExitStack) -> tuple[httpx.AsyncClient, AsyncEngine]:
    engine = create_engine(url)
    stack.push_async_callback(engine.dispose)
    courses = load_courses(ROOT / "lessons")
    ui = UiCatalogs(ROOT / "locales")
    content = load_translations(courses.values(), ROOT / "locales")
    dialogue = Dialogue(engine, courses, content, ui, outbox_channels=OUTBOX_CHANNELS)
    stack.push_async_callback(dialogue.aclose)
    await dialogue.create_cohort(
        name="Demo cohort", join_code=DEMO_JOIN_CODE, course_ids=_pathway_order(courses)
    )
    api = FakeBotApi()
    base_url = await stack.enter_async_context(api.running())
    config = Settings(
        public_url=PUBLIC_URL,
        telegram_bot_token=api.token,
        telegram_webhook_secret=SECRET,
        telegram_api_url=base_url,
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token=TWILIO_TOKEN,
    )
    telegram = TelegramChannel.from_settings(config)
    stack.push_async_callback(telegram.aclose)

    async def no_direct_replies(replies: Any) -> None:
        # Provider channels reply through the outbox; a direct reply here would be a bug.
        assert list(replies) == [], replies

    routes = twilio_routes(
        settings=config,
        dialogue=dialogue,
        engine=engine,
        on_replies=no_direct_replies,
        unmatched_status_waits=(),  # an unknown SID is looked up once, not for 7.75 s
    ) + telegram_routes(
        settings=config,
        dialogue=dialogue,
        application_or_channel=telegram,
        on_replies=no_direct_replies,
        staff=TelegramStaffCommands(engine, courses, ui),
    )
    channels: dict[ChannelName, Channel] = {
        ChannelName.SANDBOX: SandboxChannel(),
        ChannelName.TELEGRAM: telegram,
    }
    app = create_app(
        dialogue=dialogue,
        channels=channels,
        engine=engine,
        ui=ui,
        sandbox_enabled=False,
        extra_routes=routes,
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://10.1.2.3")
    stack.push_async_callback(http.aclose)
    return http, engine


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """The app on a fresh migrated database, served on a loop of the test's own.

    SQLite is the default store; PostgreSQL enforces column lengths, so an over-long field
    that slipped past the checks would fail there.
    """
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        sqlite_file = None
        if request.param == "sqlite":
            sqlite_file = tmp_path / "fuzz.db"
            url = f"sqlite+aiosqlite:///{sqlite_file}"
        else:
            url = runner.run(stack.enter_async_context(_postgres_database()))
        migrate.upgrade(url)  # its own event loop: ours is not running between runs
        http, engine = runner.run(_start(url, stack))
        try:
            yield Server(runner, http, engine, sqlite_file)
        finally:
            runner.run(stack.aclose())


def test_no_request_gets_a_5xx_a_traceback_or_a_broken_database(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    examples = EXAMPLES if server.sqlite_file is not None else EXAMPLES_POSTGRES
    started = time.monotonic()
    statuses: dict[int, int] = {}

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(REQUESTS)
    def answered_without_5xx(attempt: Attempt) -> None:
        before_records = len(caplog.records)
        before_rows = server.stored()

        response = server.send(attempt)

        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (attempt, response.text)
        new = caplog.records[before_records:]
        bad = [r for r in new if r.levelno >= logging.ERROR or r.exc_info is not None]
        assert not bad, [r.getMessage() for r in bad]
        if attempt.path != "/healthz" and not attempt.authenticated:
            assert response.status_code >= 400, attempt
            assert server.stored() == before_rows, attempt
        if response.status_code >= 400:
            assert not EXCEPTION_REPR.search(response.text), response.text

    answered_without_5xx()
    elapsed = time.monotonic() - started

    if server.sqlite_file is not None:
        with closing(sqlite3.connect(server.sqlite_file)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # PostgreSQL checks its foreign keys itself; on both, every phone learner has a number.
    for channel, address in server.query(
        "SELECT channel, address FROM learners WHERE channel IN ('sms', 'whatsapp')"
    ):
        assert e164(address) == address, (channel, address)
    [(longest,)] = server.query("SELECT max(length(provider_id)) FROM processed_inbound")
    assert (longest or 0) <= 64
    # Shown with -s (and in the report): how much was tried, how long it took.
    print(f"\nfuzz: {sum(statuses.values())} requests in {elapsed:.1f} s, statuses {statuses}")
    assert 200 in statuses and 403 in statuses  # the strategies reach both sides of the door
