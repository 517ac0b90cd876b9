"""Input that is not valid text gets a 4xx naming the field, and the conversation goes on."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from bot.channels.sandbox import SandboxChannel
from tests.web.conftest import FakeDialogue, Served

ADDRESS = "web-0123456789abcdef"
JSON = {"Content-Type": "application/json"}


def raw(body: str) -> bytes:
    """A JSON body written by hand (ADDR: the address), so it can carry a lone \\ud800."""
    return body.replace("ADDR", ADDRESS).encode("ascii")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (raw('{"address": "ADDR", "text": "\\ud800"}'), "text"),
        (raw('{"address": "ADDR", "text": "hi \\udfff there"}'), "text"),
        (raw('{"address": "ADDR", "payload": "\\ud83d"}'), "payload"),
        (raw('{"address": "ADDR", "text": "a\\u0000b"}'), "text"),
        (raw('{"address": "ADDR", "text": "hi", "\\ud800": 1}'), "\\ud800"),
        (raw('{"address": "web-\\ud800-0123456", "text": "hi"}'), "address"),
        (raw("[" * 2000 + "]" * 2000), "body"),
        (raw('{"address": "ADDR", "text": "hi", "after": 1e400}'), "after"),
        (raw('{"address": "ADDR", "text": "hi", "after": 1' + "0" * 30 + "}"), "after"),
    ],
    ids=[
        "lone-surrogate",
        "low-surrogate-inside",
        "surrogate-payload",
        "nul",
        "surrogate-key",
        "surrogate-address",
        "nested-2000",
        "after-inf",
        "after-huge",
    ],
)
async def test_bad_text_is_a_400_and_the_conversation_still_works(
    served: Served, body: bytes, field: str
) -> None:
    assert (await served.say(ADDRESS, "JOIN DEMO"))[0] == "Welcome to Demo cohort!"

    response = await served.http.post("/sandbox/messages", content=body, headers=JSON)

    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert "Traceback" not in response.text and "Error(" not in response.text
    # The same conversation answers, by POST and by poll, and the store is sound.
    assert await served.say(ADDRESS, "HELP")
    poll = await served.http.get(
        "/sandbox/messages", params={"address": ADDRESS, "after": 0, "timeout": 0}
    )
    assert poll.status_code == 200
    async with served.runtime.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA integrity_check"))).scalar_one() == "ok"


@pytest.mark.parametrize("after", ["²", "٣", "1²", "+1", " 1", "1e3", "0x10", "1" * 19])
async def test_a_poll_cursor_is_ascii_digits_or_a_400(served: Served, after: str) -> None:
    await served.say(ADDRESS, "JOIN DEMO")

    response = await served.http.get(
        "/sandbox/messages", params={"address": ADDRESS, "after": after, "timeout": 0}
    )

    assert response.status_code == 400
    assert response.json()["field"] == "after"
    ok = await served.http.get(
        "/sandbox/messages", params={"address": ADDRESS, "after": 0, "timeout": 0}
    )
    assert ok.status_code == 200 and ok.json()["messages"]


@pytest.mark.parametrize("timeout", ["٣", "1e1", "inf", "-0", "0x1"])
async def test_a_poll_timeout_is_plain_seconds_or_a_400(
    client: httpx.AsyncClient, timeout: str
) -> None:
    response = await client.get(
        "/sandbox/messages", params={"address": ADDRESS, "after": 0, "timeout": timeout}
    )

    assert response.status_code == 400
    assert response.json()["field"] == "timeout"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_body_that_is_not_json_by_type_is_a_415(
    client: httpx.AsyncClient, dialogue: FakeDialogue, content_type: str
) -> None:
    response = await client.post(
        "/sandbox/messages",
        content=b'{"address": "%s", "text": "hi"}' % ADDRESS.encode(),
        headers={"Content-Type": content_type},
    )

    assert response.status_code == 415
    assert response.json()["field"] == "Content-Type"
    assert dialogue.received == []


async def test_json_with_a_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/sandbox/messages",
        content=b'{"address": "%s", "text": "hi"}' % ADDRESS.encode(),
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("declared", "status"), [("100000", 413), ("4097", 413), ("abc", 400), ("²".encode(), 400)]
)
async def test_a_declared_length_over_the_cap_or_not_a_number_is_refused_unread(
    client: httpx.AsyncClient, dialogue: FakeDialogue, declared: str | bytes, status: int
) -> None:
    response = await client.post(
        "/sandbox/messages",
        content=b'{"address": "%s", "text": "hi"}' % ADDRESS.encode(),
        headers={**JSON, "Content-Length": declared},
    )

    assert response.status_code == status
    assert dialogue.received == []


async def test_a_refused_message_leaves_no_trace_in_the_transcript(
    client: httpx.AsyncClient, sandbox: SandboxChannel
) -> None:
    await client.post(
        "/sandbox/messages",
        content=raw('{"address": "ADDR", "text": "\\ud800"}'),
        headers=JSON,
    )

    assert sandbox.transcript(ADDRESS) == [] and sandbox.addresses() == []
