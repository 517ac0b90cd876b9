"""Every webhook request is bounded, authenticated before it is parsed, and never a 5xx.

Each test replays an input that, before these checks, made the server read a whole 400 MB
body, answer 500, store a learner that is no phone number, or echo an exception repr.
"""

from __future__ import annotations

import json
import logging
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.base import SendError, SendErrorKind
from bot.channels.twilio import TwilioChannel
from bot.domain import ChannelName, RenderedMessage
from bot.store.tables import deliveries, events, learners, processed_inbound
from bot.web.telegram import SECRET_HEADER
from tests.fakes.telegram import callback_update, text_update
from tests.fakes.twilio import FakeTwilio
from tests.web import test_telegram_webhook as telegram_tests
from tests.web import test_twilio_webhooks as twilio_tests
from tests.web.test_telegram_webhook import SECRET, Telegram
from tests.web.test_twilio_webhooks import ACCOUNT, LEARNER, Harness, delivery_of, delivery_sent

# The apps of the Telegram and Twilio webhook tests, with the shipped course and the fakes.
telegram = telegram_tests.telegram
harness = twilio_tests.harness
fake = twilio_tests.fake

MB = 1024 * 1024
CHUNK = 64 * 1024


class Flood:
    """A request body of `size` bytes, produced chunk by chunk; counts what was read of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.read < self.size:
            self.read += CHUNK
            yield b"A" * CHUNK


async def stored(harness_or_telegram: Any) -> list[int]:
    return [
        await harness_or_telegram.count(table)
        for table in (learners, processed_inbound, deliveries, events)
    ]


# --- bodies are capped before they are read ----------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_400_mb_post_to_twilio_is_refused_without_reading_it(
    harness: Harness, declared: bool
) -> None:
    flood = Flood(400 * MB)
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl",  # present, so only the size can refuse it
    }
    if declared:
        headers["content-length"] = str(flood.size)
    tracemalloc.start()
    try:
        response = await harness.http.post("/webhooks/twilio/sms", content=flood, headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 413
    assert response.text == "the body is larger than 64 KB"
    # Refused on its Content-Length before a byte is read; cut off just past 64 KB otherwise.
    assert flood.read == (0 if declared else 2 * CHUNK)
    assert peak < 4 * MB
    assert await stored(harness) == [0, 0, 0, 0]


async def test_an_unsigned_post_to_twilio_is_refused_before_its_body_is_read(
    harness: Harness,
) -> None:
    flood = Flood(400 * MB)
    response = await harness.http.post(
        "/webhooks/twilio/sms",
        content=flood,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 403
    assert flood.read == 0


async def test_a_50_mb_update_with_the_right_secret_is_cut_off_at_256_kb(
    telegram: Telegram,
) -> None:
    flood = Flood(50 * MB)
    headers = {SECRET_HEADER: SECRET, "content-type": "application/json"}
    tracemalloc.start()
    try:
        response = await telegram.http.post("/webhooks/telegram", content=flood, headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 413
    assert response.text == "the body is larger than 256 KB"
    assert flood.read == 256 * 1024 + CHUNK
    assert peak < 4 * MB


async def test_a_telegram_post_without_the_secret_is_not_read(telegram: Telegram) -> None:
    flood = Flood(50 * MB)
    response = await telegram.http.post(
        "/webhooks/telegram", content=flood, headers={"content-type": "application/json"}
    )
    assert response.status_code == 403
    assert flood.read == 0


# --- content types -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["sms", "whatsapp", "status"])
@pytest.mark.parametrize("signed", [False, True])
async def test_multipart_with_a_file_to_twilio_is_unsupported(
    harness: Harness, route: str, signed: bool
) -> None:
    params = {"MessageSid": harness.new_sid(), "From": LEARNER, "Body": "JOIN DEMO"}
    path = f"/webhooks/twilio/{route}"
    signature = harness.validator.compute_signature("https://learnbot.example.org" + path, params)
    response = await harness.http.post(
        path,
        data=params,
        files={"photo": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")},
        headers={"X-Twilio-Signature": signature} if signed else {},
    )
    assert response.status_code == 415
    assert response.text == "Content-Type must be application/x-www-form-urlencoded"
    assert await stored(harness) == [0, 0, 0, 0]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_telegram_takes_only_json(telegram: Telegram, content_type: str) -> None:
    headers = {SECRET_HEADER: SECRET, "content-type": content_type}
    body = json.dumps(text_update(1, 5550100, "/start DEMO")).encode()
    response = await telegram.http.post("/webhooks/telegram", content=body, headers=headers)
    assert response.status_code == 415
    assert response.text == "Content-Type must be application/json"
    assert await telegram.count(processed_inbound) == 0


# --- malformed Telegram updates with the right secret ------------------------------------------


def without_chat() -> dict[str, Any]:
    update = text_update(11, 5550100, "/start DEMO")
    del update["message"]["chat"]
    return update


def message_with(path: str, value: Any, update_id: int = 12) -> dict[str, Any]:
    update = text_update(update_id, 5550100, "/start DEMO")
    node = update
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return update


def callback_with(key: str, value: Any) -> dict[str, Any]:
    update = callback_update(13, 5550100, "lang:en", message_id=3)
    if value is None:
        del update["callback_query"][key]
    else:
        update["callback_query"][key] = value
    return update


def reply_chain(depth: int) -> dict[str, Any]:
    """A message replying to a message replying to ... `depth` deep: PTB recurses on it."""
    update = text_update(14, 5550100, "/start DEMO")
    inner: dict[str, Any] = dict(update["message"])
    for _ in range(depth):
        inner = {**update["message"], "reply_to_message": inner}
    update["message"] = inner
    return update


UNUSABLE_UPDATES = {
    "no chat": (without_chat(), "message.chat is missing"),
    "text as a number": (message_with("message.text", 12345), "message.text is not a string"),
    "date 1e20": (message_with("message.date", 1e20), "message.date is not an integer"),
    "date 10**20": (message_with("message.date", 10**20), "message.date is out of range"),
    "chat id as text": (
        message_with("message.chat.id", "5550100"),
        "message.chat.id is not an integer",
    ),
    "chat id of 100 digits": (
        message_with("message.chat.id", 10**100),
        "message.chat.id is out of range",
    ),
    "a lone surrogate": (
        message_with("message.text", "\ud800"),
        "message.text is not valid Unicode",
    ),
    "a NUL": (
        message_with("message.text", "JOIN\x00DEMO"),
        "message.text contains a NUL character",
    ),
    "5,000 characters": (message_with("message.text", "a" * 5000), "longer than 4096 characters"),
    "update_id 10**30": ({"update_id": 10**30}, "update_id is out of range"),
    "language code as a list": (
        message_with("message.from.language_code", ["fr"]),
        "message.from.language_code is not a language tag",
    ),
    "button without from": (callback_with("from", None), "callback_query.from is missing"),
    "button data of 100 bytes": (
        callback_with("data", "é" * 40),
        "callback_query.data is longer than 64 bytes",
    ),
    "button data as an object": (
        callback_with("data", {"a": 1}),
        "callback_query.data is not a string",
    ),
    "replies 700 deep": (reply_chain(700), "PTB cannot read it (RecursionError)"),
}


@pytest.mark.parametrize("case", UNUSABLE_UPDATES, ids=list(UNUSABLE_UPDATES))
async def test_an_update_the_bot_can_never_process_is_acknowledged_and_logged(
    telegram: Telegram,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    update, reason = UNUSABLE_UPDATES[case]
    caplog.set_level(logging.WARNING, logger="bot.web.telegram")

    # Sent as Telegram does, in ASCII JSON (a lone surrogate travels as "\\ud800").
    headers = {SECRET_HEADER: SECRET, "content-type": "application/json"}
    body = json.dumps(update).encode()
    response = await telegram.http.post("/webhooks/telegram", content=body, headers=headers)

    # 200: Telegram would retry anything else for a day, and every retry would fail the same.
    assert response.status_code == 200
    [line] = [r for r in caplog.records if r.name == "bot.web.telegram"]
    assert line.levelno == logging.WARNING and reason in line.getMessage()
    assert line.exc_info is None
    assert await stored(telegram) == [0, 0, 0, 0]
    assert telegram.api.calls == []


NOT_UPDATES = {
    "not JSON": (b"{not json", "the body is not valid JSON"),
    "not UTF-8": (b"\xff\xfe", "the body is not UTF-8 text"),
    "a list": (b"[1, 2]", "the body is not a Telegram update: expected a JSON object"),
    "no update_id": (b'{"message": {}}', "update_id is missing or not an integer"),
    "update_id true": (b'{"update_id": true}', "update_id is missing or not an integer"),
    "nested 100,000 deep": (
        b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "the body's JSON is nested too deeply",
    ),
    "an integer of 5,000 digits": (
        b'{"update_id": ' + b"9" * 5000 + b"}",
        "the body is not valid JSON",
    ),
}


@pytest.mark.parametrize("case", NOT_UPDATES, ids=list(NOT_UPDATES))
async def test_a_body_that_is_no_update_is_a_bad_request_in_plain_words(
    telegram: Telegram,
    case: str,
) -> None:
    body, words = NOT_UPDATES[case]
    headers = {SECRET_HEADER: SECRET, "content-type": "application/json"}

    response = await telegram.http.post("/webhooks/telegram", content=body, headers=headers)

    assert (response.status_code, response.text) == (400, words)
    assert await telegram.count(processed_inbound) == 0


@pytest.mark.parametrize("text", [" ", "\n\t", "\u00a0"])
async def test_a_text_of_spaces_only_is_an_ordinary_message(telegram: Telegram, text: str) -> None:
    # Found by the fuzz test: the staff-command check split it into no words (IndexError, 500).
    response = await telegram.post(text_update(16, 5550100, text))
    assert response.status_code == 200
    assert await telegram.count(processed_inbound) == 1


async def test_a_failing_callback_answer_is_logged_and_the_update_still_acknowledged(
    telegram: Telegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.web.telegram")
    telegram.api.fail_next("answerCallbackQuery", 400, "Bad Request: query is too old")
    update = callback_update(15, 5550100, "lang:xx", message_id=3)

    response = await telegram.post(update)

    assert response.status_code == 200
    assert any("could not answer the callback query" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- malformed Twilio fields with a valid signature --------------------------------------------


async def test_a_signed_status_callback_with_a_unicode_digit_error_code_is_a_bad_request(
    harness: Harness,
) -> None:
    _, sid = await delivery_sent(harness)

    response = await harness.status(sid, "failed", "²")

    assert (response.status_code, response.text) == (400, "ErrorCode is not a number")
    assert await delivery_of(harness, sid) == ("sent", None)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"From": LEARNER, "Body": "hi"}, "MessageSid is missing"),
        ({"MessageSid": "SM1", "From": LEARNER}, "MessageSid is not a Twilio message SID"),
        ({"MessageSid": "SM" + "x" * 32, "From": LEARNER}, "MessageSid is not a Twilio"),
        ({"MessageSid": "SM" + "0" * 5000, "From": LEARNER}, "MessageSid is not a Twilio"),
        ({"MessageSid": "SM" + "0" * 32, "Body": "hi"}, "From is missing"),
        (
            {"MessageSid": "SM" + "0" * 32, "From": LEARNER, "Body": "a" * 1601},
            "Body is longer than 1600 characters",
        ),
    ],
)
async def test_signed_fields_twilio_never_sends_are_bad_requests_naming_the_field(
    harness: Harness, params: dict[str, str], words: str
) -> None:
    response = await harness.post("/webhooks/twilio/sms", params)

    assert response.status_code == 400
    assert response.text.startswith(words)
    assert "Error" not in response.text and "(" not in response.text.replace("(SM", "")
    assert await stored(harness) == [0, 0, 0, 0]
    assert harness.fake.messages == []


@pytest.mark.parametrize(
    ("channel", "sender"),
    [
        (ChannelName.SMS, "hello"),
        (ChannelName.SMS, "whatsapp:"),
        (ChannelName.SMS, "whatsapp:" + LEARNER),  # a WhatsApp sender on the SMS webhook
        (ChannelName.SMS, "12345"),  # a short code
        (ChannelName.SMS, "+２５４７１２３４５６７８"),  # fullwidth digits
        (ChannelName.SMS, "+1"),
        (ChannelName.SMS, "x" * 10_000),
        (ChannelName.WHATSAPP, "whatsapp:"),
        (ChannelName.WHATSAPP, "whatsapp:hello"),
        (ChannelName.WHATSAPP, LEARNER),  # no whatsapp: prefix
    ],
)
async def test_a_sender_that_is_no_phone_number_is_never_a_learner_nor_messaged(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    channel: ChannelName,
    sender: str,
) -> None:
    params = {"MessageSid": harness.new_sid(), "From": sender, "Body": "JOIN DEMO"}

    response = await harness.post(f"/webhooks/twilio/{channel}", params)

    # 200: a retry would carry the same From; a log line says what was dropped (not the From).
    assert response.status_code == 200 and response.text.endswith("<Response/>")
    assert await stored(harness) == [0, 0, 0, 0]
    assert harness.fake.messages == []
    [line] = [r for r in caplog.records if r.name == "bot.web.twilio"]
    assert "From is not a phone number" in line.getMessage()
    assert sender not in line.getMessage() or len(sender) < 2


async def test_a_100_kb_sender_is_refused_by_the_size_cap(harness: Harness) -> None:
    params = {"MessageSid": harness.new_sid(), "From": "1" * 100_000, "Body": "JOIN DEMO"}
    response = await harness.post("/webhooks/twilio/sms", params)
    assert response.status_code == 413
    assert await stored(harness) == [0, 0, 0, 0]


async def test_nul_characters_are_dropped_from_a_body(harness: Harness) -> None:
    response = await harness.inbound(ChannelName.SMS, "JOIN\x00 DEMO")
    assert response.status_code == 200
    async with harness.engine.connect() as conn:
        [learner] = (await conn.execute(select(learners.c.address))).scalars().all()
    assert learner == LEARNER
    assert "Welcome to Demo cohort!" in harness.fake.messages[0].params["Body"]


# --- the outbound side never sends to an address that is no phone number -----------------------


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        (ChannelName.SMS, "hello"),
        (ChannelName.SMS, ""),
        (ChannelName.SMS, "whatsapp:+254712345678"),
        (ChannelName.WHATSAPP, "whatsapp:"),
        (ChannelName.WHATSAPP, "hello"),
    ],
)
async def test_twilio_channel_refuses_an_address_that_is_no_phone_number(
    channel: ChannelName, address: str
) -> None:
    async with FakeTwilio() as server:
        twilio = TwilioChannel(
            channel,
            account_sid=ACCOUNT,
            auth_token="token",
            from_="+15550001111" if channel == ChannelName.SMS else "whatsapp:+15550002222",
            api_url=server.url,
        )
        try:
            with pytest.raises(SendError) as refused:
                await twilio.send(
                    RenderedMessage(channel=channel, address=address, text="Hello", segments=1)
                )
        finally:
            await twilio.aclose()
        assert server.messages == []
    # Unreachable: never retried, and the dispatcher stops sending to that learner.
    assert refused.value.kind == SendErrorKind.UNREACHABLE
    assert "not a phone number" in str(refused.value)
