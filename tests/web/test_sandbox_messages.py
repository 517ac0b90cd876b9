"""POST and long-poll GET /sandbox/messages: the chat simulator's message API."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from bot.channels.sandbox import SandboxChannel
from bot.domain import Button, ChannelName, Image, InboundMessage, OutboundMessage, RenderedMessage
from tests.web.conftest import FakeDialogue

ADDRESS = "web-0123456789abcdef"
MAP = Image("https://example.org/map.png", "A map of the district offices")


def quiz_reply(message: InboundMessage) -> list[OutboundMessage]:
    """What a lesson looks like: an image with its text, then a question with buttons."""
    return [
        OutboundMessage(
            channel=message.channel,
            address=message.address,
            text="Lesson 1: know your users",
            locale="en",
            image=MAP,
        ),
        OutboundMessage(
            channel=message.channel,
            address=message.address,
            text="Who should shape a service?",
            locale="en",
            buttons=(Button("Its users", "ans:1"), Button("Only IT", "ans:2")),
        ),
    ]


async def post(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/sandbox/messages", json={"address": ADDRESS, **body})


async def test_text_round_trip_returns_the_echo_and_the_rendered_replies(
    client: httpx.AsyncClient, dialogue: FakeDialogue
) -> None:
    dialogue.reply = quiz_reply

    response = await post(client, text="  JOIN DEMO ", payload=None)

    assert response.status_code == 200
    (inbound,) = dialogue.received
    assert (inbound.channel, inbound.address, inbound.text, inbound.payload) == (
        ChannelName.SANDBOX,
        ADDRESS,
        "JOIN DEMO",
        None,
    )
    data = response.json()
    echo, lesson, question = data["messages"]
    assert data["cursor"] == question["seq"]
    assert (echo["from_learner"], echo["text"]) == (True, "JOIN DEMO")
    assert (lesson["text"], lesson["image_url"], lesson["image_alt"]) == (
        "Lesson 1: know your users",
        MAP.url,
        MAP.alt,
    )
    assert question["buttons"] == [
        {"label": "Its users", "payload": "ans:1"},
        {"label": "Only IT", "payload": "ans:2"},
    ]
    assert question["id"] == f"sbx-{question['seq']}"


async def test_replies_carry_telegram_and_sms_previews(
    client: httpx.AsyncClient, dialogue: FakeDialogue
) -> None:
    dialogue.reply = quiz_reply

    _, lesson, question = (await post(client, text="JOIN DEMO")).json()["messages"]

    # SMS has no images: the alt text goes with the text; buttons become numbered lines.
    (lesson_sms,) = lesson["preview"]["sms"]
    assert MAP.alt in lesson_sms["text"] and lesson_sms["image_url"] is None
    (question_sms,) = question["preview"]["sms"]
    assert "1) Its users" in question_sms["text"] and "2) Only IT" in question_sms["text"]
    assert (question_sms["encoding"], question_sms["segments"]) == ("GSM-7", 1)
    assert question_sms["buttons"] == []
    (question_telegram,) = question["preview"]["telegram"]
    assert [b["payload"] for b in question_telegram["buttons"]] == ["ans:1", "ans:2"]


async def test_pressing_a_button_sends_its_payload_and_shows_its_label(
    client: httpx.AsyncClient, dialogue: FakeDialogue
) -> None:
    dialogue.reply = quiz_reply
    cursor = (await post(client, text="JOIN DEMO")).json()["cursor"]
    dialogue.reply = lambda message: [
        OutboundMessage(message.channel, message.address, "Correct!", "en")
    ]

    response = await post(client, text=None, payload="ans:1", after=cursor)

    assert (dialogue.received[-1].text, dialogue.received[-1].payload) == ("", "ans:1")
    echo, feedback = response.json()["messages"]
    assert (echo["from_learner"], echo["text"]) == (True, "Its users")
    assert feedback["text"] == "Correct!"


async def test_after_returns_messages_pushed_since_the_cursor(
    client: httpx.AsyncClient, dialogue: FakeDialogue, sandbox: SandboxChannel
) -> None:
    cursor = (await post(client, text="hello")).json()["cursor"]
    await sandbox.send(RenderedMessage(ChannelName.SANDBOX, ADDRESS, "Pushed by your trainer"))

    response = await post(client, text="hello again", after=cursor)

    texts = [m["text"] for m in response.json()["messages"]]
    assert texts == ["Pushed by your trainer", "hello again"]


async def test_conversations_of_different_addresses_do_not_mix(
    client: httpx.AsyncClient, dialogue: FakeDialogue
) -> None:
    dialogue.reply = lambda message: [
        OutboundMessage(message.channel, message.address, f"hi {message.address}", "en")
    ]

    await post(client, text="hello")
    response = await client.post(
        "/sandbox/messages", json={"address": "web-other-browser", "text": "hello", "after": 0}
    )

    assert [m["text"] for m in response.json()["messages"]] == ["hello", "hi web-other-browser"]


def too_long_payload() -> str:
    return "é" * 33  # 33 characters, 66 bytes


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "hi"}, "address"),
        ({"address": "short", "text": "hi"}, "address"),
        ({"address": "web-<script>alert(1)", "text": "hi"}, "address"),
        ({"address": 12345678, "text": "hi"}, "address"),
        ({"address": ADDRESS, "text": "x" * 401}, "text"),
        ({"address": ADDRESS, "text": 42}, "text"),
        ({"address": ADDRESS, "text": "   "}, "text"),
        ({"address": ADDRESS, "text": None, "payload": None}, "text"),
        ({"address": ADDRESS, "payload": too_long_payload()}, "payload"),
        ({"address": ADDRESS, "payload": ["ans:1"]}, "payload"),
        ({"address": ADDRESS, "text": "hi", "after": -1}, "after"),
        ({"address": ADDRESS, "text": "hi", "after": True}, "after"),
        ({"address": ADDRESS, "text": "hi", "sender": "admin"}, "sender"),
        (["not", "an", "object"], "body"),
    ],
)
async def test_invalid_input_is_a_400_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient,
    dialogue: FakeDialogue,
    sandbox: SandboxChannel,
    body: object,
    field: str,
) -> None:
    response = await client.post("/sandbox/messages", json=body)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["error"].startswith(f"{field}: ")
    assert dialogue.received == []
    assert sandbox.cursor == 0


async def test_text_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await post(client, text="x" * 400, payload="é" * 32)

    assert response.status_code == 200


@pytest.mark.parametrize(
    "content", [b"{not json", b"\xff\xfe", b""], ids=["bad-json", "bad-utf8", "empty"]
)
async def test_a_body_that_is_not_json_is_a_400(
    client: httpx.AsyncClient, dialogue: FakeDialogue, content: bytes
) -> None:
    response = await client.post(
        "/sandbox/messages", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert dialogue.received == []


async def test_an_oversized_body_is_refused_unread(
    client: httpx.AsyncClient, dialogue: FakeDialogue
) -> None:
    body = json.dumps({"address": ADDRESS, "text": "x" * 10_000})

    response = await client.post("/sandbox/messages", content=body)

    assert response.status_code == 413
    assert response.json()["field"] == "body"
    assert dialogue.received == []


async def test_a_failing_dialogue_is_a_logged_500_not_a_crash(
    client: httpx.AsyncClient, dialogue: FakeDialogue, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(message: InboundMessage) -> list[OutboundMessage]:
        raise RuntimeError("database is down")

    dialogue.reply = broken

    response = await post(client, text="hello")

    assert response.status_code == 500
    assert "error was logged" in response.json()["error"]
    assert "database is down" in caplog.text


async def test_long_poll_returns_the_transcript_at_once(
    client: httpx.AsyncClient, dialogue: FakeDialogue
) -> None:
    dialogue.reply = quiz_reply
    await post(client, text="JOIN DEMO")

    response = await client.get("/sandbox/messages", params={"address": ADDRESS, "after": 0})

    data = response.json()
    assert [m["from_learner"] for m in data["messages"]] == [True, False, False]
    assert data["cursor"] == data["messages"][-1]["seq"]


async def test_long_poll_waits_for_a_message_sent_later(
    client: httpx.AsyncClient, sandbox: SandboxChannel
) -> None:
    async def push_later() -> None:
        await asyncio.sleep(0.05)
        await sandbox.send(RenderedMessage(ChannelName.SANDBOX, ADDRESS, "Lesson 2 is ready"))

    response, _ = await asyncio.gather(
        client.get("/sandbox/messages", params={"address": ADDRESS, "after": 0, "timeout": 5}),
        push_later(),
    )

    assert response.status_code == 200
    assert [m["text"] for m in response.json()["messages"]] == ["Lesson 2 is ready"]
    assert response.json()["cursor"] == 1


async def test_long_poll_times_out_empty_with_the_same_cursor(
    client: httpx.AsyncClient, sandbox: SandboxChannel
) -> None:
    await sandbox.send(RenderedMessage(ChannelName.SANDBOX, ADDRESS, "old"))

    response = await client.get(
        "/sandbox/messages", params={"address": ADDRESS, "after": 1, "timeout": 0.05}
    )

    assert response.json() == {"messages": [], "cursor": 1}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": 0}, "address"),
        ({"address": "bad address!", "after": 0}, "address"),
        ({"address": ADDRESS, "after": "-1"}, "after"),
        ({"address": ADDRESS, "after": "ten"}, "after"),
        ({"address": ADDRESS, "timeout": "26"}, "timeout"),
        ({"address": ADDRESS, "timeout": "nan"}, "timeout"),
        ({"address": ADDRESS, "timeout": "soon"}, "timeout"),
    ],
)
async def test_long_poll_validates_its_parameters(
    client: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    response = await client.get("/sandbox/messages", params=params)  # type: ignore[arg-type]

    assert response.status_code == 400
    assert response.json()["field"] == field


async def test_a_lessons_title_is_bold_as_on_telegram_and_plain_on_sms(
    client: httpx.AsyncClient, dialogue: FakeDialogue
) -> None:
    title = "Lesson 1: know your users"

    def titled(message: InboundMessage) -> list[OutboundMessage]:
        text = f"{title}\n\nStart with the people."
        meta = {"lesson": "users", "part": "lesson", "title": title}
        return [OutboundMessage(message.channel, message.address, text, "en", meta=meta)]

    dialogue.reply = titled

    _, lesson = (await post(client, text="NEXT")).json()["messages"]

    assert lesson["bold"] == [[0, len(title)]]
    assert lesson["preview"]["telegram"][0]["bold"] == [[0, len(title)]]
    assert lesson["preview"]["sms"][0]["bold"] == []
