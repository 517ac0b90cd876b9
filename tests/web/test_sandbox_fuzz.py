"""Property-based fuzz of the sandbox's JSON API on the real dialogue and a SQLite store.

Whatever a client sends to POST or GET /sandbox/messages: no 5xx, no ERROR log record, and
the database passes `PRAGMA integrity_check`. Bounded: a fixed number of derandomized examples.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot.config import Settings
from bot.runtime import Runtime, build_runtime, ensure_demo_cohort
from bot.web.app import create_app
from bot.web.sandbox_limits import Rate, SandboxLimits

ROOT = Path(__file__).resolve().parents[2]
ADDRESSES = ["web-0123456789abcdef", "web-fuzz-second-01", "web-fuzz-third-001"]
WORDS = [
    *("JOIN DEMO", "JOIN NBO234", "/start DEMO", "/start NBO234", "NBO234"),
    *("HELP", "NEXT", "1", "2", "A", "STOP", "START", "SKIP", "PROGRESS", "LANGUAGE"),
    *("DELETE MY DATA", "YES", "ZONE", "Nairobi", "UTC+3"),
]
PAYLOADS = ["lang:fr", "lang:ar", "yes", "no", "ans:1", "zone:Africa/Nairobi", "next"]
UNLIMITED = Rate(burst=1_000_000, per_second=1_000_000.0)
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Errors(logging.Handler):
    """Every record at ERROR or above, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Target:
    """The app on a loop of its own, so hypothesis can call it from a plain function."""

    runner: asyncio.Runner
    runtime: Runtime
    http: httpx.AsyncClient
    errors: Errors
    statuses: dict[int, int] = field(default_factory=dict)

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        response = self.runner.run(self.http.request(method, url, **options))
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        return response

    def integrity(self) -> str:
        async def check() -> str:
            async with self.runtime.engine.connect() as conn:
                return str((await conn.execute(text("PRAGMA integrity_check"))).scalar_one())

        return self.runner.run(check())


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The runtime `learnbot serve` builds with LEARNBOT_DEMO=1, limits lifted for the fuzz."""
    folder = tmp_path_factory.mktemp("fuzz")
    environ = {
        "LEARNBOT_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'fuzz.db'}",
        "LEARNBOT_LESSONS_DIR": str(ROOT / "lessons"),
        "LEARNBOT_LOCALES_DIR": str(ROOT / "locales"),
        "LEARNBOT_DEMO": "1",
    }
    errors = Errors()
    logging.getLogger().addHandler(errors)
    with asyncio.Runner() as runner:
        runtime = runner.run(build_runtime(Settings.from_env(environ, env_file=None)))
        runner.run(ensure_demo_cohort(runtime))
        runner.run(
            runtime.dialogue.create_cohort(
                name="Closed", join_code="NBO234", course_ids=sorted(runtime.courses)
            )
        )
        app = create_app(
            dialogue=runtime.dialogue,
            channels=runtime.channels,
            engine=runtime.engine,
            ui=runtime.ui,
            sandbox_enabled=True,
            sandbox_limits=SandboxLimits(UNLIMITED, UNLIMITED, UNLIMITED),
        )
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        try:
            yield Target(runner, runtime, http, errors)
        finally:
            runner.run(http.aclose())
            runner.run(runtime.close())
            logging.getLogger().removeHandler(errors)


# Any character at all, lone surrogates and NUL included.
any_text = st.text(st.characters(exclude_categories=()), max_size=500)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=8,
)
address = st.sampled_from(ADDRESSES) | any_text | json_value
message_text = st.none() | st.sampled_from(WORDS) | any_text | json_value
payload = st.none() | st.sampled_from(PAYLOADS) | any_text | json_value
after = st.none() | st.integers(min_value=-1, max_value=10**20) | json_value
body = st.fixed_dictionaries(
    {"address": address},
    optional={"text": message_text, "payload": payload, "after": after, "extra": json_value},
)
# Requests a page could send, so the dialogue itself is driven through its states too.
typed = st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=400)
plausible = st.fixed_dictionaries(
    {"address": st.sampled_from(ADDRESSES), "text": st.sampled_from(WORDS) | typed},
    optional={
        "payload": st.sampled_from(PAYLOADS),
        "after": st.integers(min_value=0, max_value=10**6),
    },
)
encoded_body = (
    plausible.map(lambda value: json.dumps(value).encode())
    | plausible.map(lambda value: json.dumps(value).encode())
    | body.map(lambda value: json.dumps(value).encode())  # ensure_ascii: surrogates as \ud800
    | json_value.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=600)
    | st.integers(min_value=1, max_value=3000).map(lambda depth: b"[" * depth + b"]" * depth)
    | st.integers(min_value=1, max_value=3000).map(lambda depth: b'{"a":' * depth + b"1")
)
content_type = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "", "a/b; c"]
)
# A URL carries bytes: percent-encoded text, or bytes that are not UTF-8 at all.
url_text = any_text.filter(lambda s: not re.search(r"[\ud800-\udfff]", s)).map(quote)
query_value = url_text | st.binary(max_size=40).map(quote_from_bytes)
seconds = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,6})?")


@FUZZ
@given(content=encoded_body, kind=st.just("application/json") | content_type)
def test_post_messages_never_fails(target: Target, content: bytes, kind: str) -> None:
    headers = {"Content-Type": kind} if kind else {}

    response = target.request("POST", "/sandbox/messages", content=content, headers=headers)

    assert response.status_code < 500, response.text
    assert not target.errors.records, target.errors.records[0].getMessage()


@settings(FUZZ, max_examples=40)
@given(messages=st.lists(plausible, min_size=1, max_size=8))
def test_conversations_never_fail(target: Target, messages: list[dict[str, Any]]) -> None:
    # Sequences of what a page sends: join, choose, answer, stop, delete, in any order.
    for message in messages:
        response = target.request("POST", "/sandbox/messages", json=message)

        assert response.status_code < 500, response.text
    assert not target.errors.records, target.errors.records[0].getMessage()


@FUZZ
@given(
    address=st.sampled_from(ADDRESSES).map(quote) | query_value,
    cursor=st.sampled_from(["0", "1", "²", "٣", "-1", "99999999999999999999"]) | query_value,
    timeout=st.just("0") | query_value,
)
def test_get_messages_never_fails(target: Target, address: str, cursor: str, timeout: str) -> None:
    # A valid timeout would make the poll wait: every valid one becomes 0.
    timeout = "0" if seconds.fullmatch(timeout) else timeout

    response = target.request(
        "GET", f"/sandbox/messages?address={address}&after={cursor}&timeout={timeout}"
    )

    assert response.status_code < 500, response.text
    assert not target.errors.records, target.errors.records[0].getMessage()


def test_after_the_fuzz_the_store_is_intact_and_the_bot_still_answers(target: Target) -> None:
    response = target.request(
        "POST", "/sandbox/messages", json={"address": "web-after-the-fuzz-1", "text": "JOIN DEMO"}
    )

    assert response.status_code == 200
    assert any(m["text"] == "Welcome to Demo cohort!" for m in response.json()["messages"])
    assert target.integrity() == "ok"
    assert not target.errors.records
    # Both kinds were tried: refused input, and messages the dialogue answered.
    assert sum(target.statuses.values()) > 300, target.statuses
    assert target.statuses.get(200, 0) > 150, target.statuses
