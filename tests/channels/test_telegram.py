"""TelegramChannel through the real PTB library against the fake Bot API on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.channels.base import Channel, SendError, SendErrorKind
from bot.channels.telegram import TelegramChannel, split_text
from bot.config import Settings
from bot.domain import Button, ChannelName, RenderedMessage
from tests.fakes.telegram import FakeBotApi


@pytest.fixture
def fake() -> FakeBotApi:
    return FakeBotApi()


@pytest.fixture
async def channel(fake: FakeBotApi) -> AsyncIterator[TelegramChannel]:
    async with fake.running() as base_url:
        settings = Settings(telegram_bot_token=fake.token, telegram_api_url=base_url)
        channel = TelegramChannel.from_settings(settings)
        try:
            yield channel
        finally:
            await channel.aclose()


def message(text: str = "Hello", **kwargs: object) -> RenderedMessage:
    return RenderedMessage(channel=ChannelName.TELEGRAM, address="42", text=text, **kwargs)  # type: ignore[arg-type]


async def test_text_goes_out_as_a_message(channel: TelegramChannel, fake: FakeBotApi) -> None:
    assert isinstance(channel, Channel) and channel.name is ChannelName.TELEGRAM
    result = await channel.send(message("Hello, Amina"))
    [call] = fake.calls_to("sendMessage")
    assert call.params["chat_id"] == "42" and call.params["text"] == "Hello, Amina"
    assert "reply_markup" not in call.params and "parse_mode" not in call.params
    assert result.provider_message_id == "1"


async def test_buttons_become_an_inline_keyboard(
    channel: TelegramChannel, fake: FakeBotApi
) -> None:
    buttons = (Button("With the users", "ans:1"), Button("With software", "ans:2"))
    await channel.send(message("Where do you start?", buttons=buttons))
    markup = fake.calls_to("sendMessage")[0].params["reply_markup"]
    assert markup == {
        "inline_keyboard": [
            [{"text": "With the users", "callback_data": "ans:1"}],
            [{"text": "With software", "callback_data": "ans:2"}],
        ]
    }


async def test_short_buttons_share_one_row(channel: TelegramChannel, fake: FakeBotApi) -> None:
    buttons = tuple(Button(str(n), f"rate:{n}") for n in range(1, 6))
    await channel.send(message("How useful?", buttons=buttons))
    [row] = fake.calls_to("sendMessage")[0].params["reply_markup"]["inline_keyboard"]
    assert [key["callback_data"] for key in row] == [f"rate:{n}" for n in range(1, 6)]


async def test_too_long_callback_data_is_refused_before_sending(
    channel: TelegramChannel, fake: FakeBotApi
) -> None:
    with pytest.raises(SendError) as raised:
        await channel.send(message("Q", buttons=(Button("x", "a" * 65),)))
    assert raised.value.kind is SendErrorKind.PERMANENT and "65" in raised.value.detail
    assert fake.calls == []


async def test_image_goes_out_as_a_photo_with_caption(
    channel: TelegramChannel, fake: FakeBotApi
) -> None:
    url = "https://example.org/users.png"
    result = await channel.send(
        message("Start with users", image_url=url, buttons=(Button("OK", "ok"),))
    )
    [call] = fake.calls_to("sendPhoto")
    assert call.params["photo"] == url and call.params["caption"] == "Start with users"
    assert call.params["reply_markup"]["inline_keyboard"] == [
        [{"text": "OK", "callback_data": "ok"}]
    ]
    assert fake.calls_to("sendMessage") == []
    assert result.provider_message_id == "1"


async def test_long_caption_continues_as_text_with_the_keyboard(
    channel: TelegramChannel, fake: FakeBotApi
) -> None:
    body = "\n\n".join(["Title", "a" * 800, "b" * 800])
    result = await channel.send(
        message(body, image_url="https://example.org/i.png", buttons=(Button("Next", "next"),))
    )
    [photo] = fake.calls_to("sendPhoto")
    [rest] = fake.calls_to("sendMessage")
    assert photo.params["caption"] == "Title\n\n" + "a" * 800
    assert "reply_markup" not in photo.params
    assert rest.params["text"] == "b" * 800 and "reply_markup" in rest.params
    assert result.provider_message_id == "2"  # the message that carries the keyboard


def test_split_text_counts_utf16_units_and_cuts_at_spaces() -> None:
    assert split_text("short", 10) == ["short"]
    assert split_text("aaaa bbbb cccc", 9) == ["aaaa bbbb", "cccc"]
    emoji = "😀" * 6  # 12 UTF-16 units
    assert split_text(emoji, 10) == ["😀" * 5, "😀"]


@pytest.mark.parametrize(
    ("status", "description", "kind", "code"),
    [
        (403, "Forbidden: bot was blocked by the user", SendErrorKind.OPTED_OUT, "403"),
        (403, "Forbidden: user is deactivated", SendErrorKind.UNREACHABLE, "403"),
        (400, "Bad Request: message text is empty", SendErrorKind.PERMANENT, "400"),
        (400, "Bad Request: chat not found", SendErrorKind.UNREACHABLE, "400"),
        (500, "Internal Server Error", SendErrorKind.RETRYABLE, "network"),
        (502, "Bad Gateway", SendErrorKind.RETRYABLE, "network"),
        (401, "Unauthorized", SendErrorKind.PERMANENT, "401"),
    ],
)
async def test_provider_errors_are_classified(
    channel: TelegramChannel,
    fake: FakeBotApi,
    status: int,
    description: str,
    kind: SendErrorKind,
    code: str,
) -> None:
    fake.fail_next("sendMessage", status, description)
    with pytest.raises(SendError) as raised:
        await channel.send(message())
    assert (raised.value.kind, raised.value.code) == (kind, code)
    # The reason is kept for the log (PTB drops the "Bad Request: " prefix).
    assert description.split(": ")[-1].lower() in raised.value.detail.lower()
    assert raised.value.retry_after is None


async def test_flood_control_is_retryable_after_the_given_wait(
    channel: TelegramChannel, fake: FakeBotApi
) -> None:
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(SendError) as raised:
        await channel.send(message())
    assert raised.value.kind is SendErrorKind.RETRYABLE
    assert raised.value.retry_after == 7.0 and raised.value.code == "429"
    assert (await channel.send(message())).provider_message_id == "1"  # then it goes


async def test_a_timeout_is_retryable(fake: FakeBotApi) -> None:
    async with fake.running() as base_url:
        fake.delay = 0.5
        request = HTTPXRequest(read_timeout=0.1)
        channel = TelegramChannel(Bot(fake.token, base_url=base_url, request=request))
        with pytest.raises(SendError) as raised:
            await channel.send(message())
        await channel.aclose()
    assert (raised.value.kind, raised.value.code) == (SendErrorKind.RETRYABLE, "timeout")


async def test_a_refused_connection_is_retryable(fake: FakeBotApi) -> None:
    with socket.socket() as sock:  # a port that is certainly closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = TelegramChannel(Bot(fake.token, base_url=f"http://127.0.0.1:{port}/bot"))
    with pytest.raises(SendError) as raised:
        await channel.send(message())
    await channel.aclose()
    assert (raised.value.kind, raised.value.code) == (SendErrorKind.RETRYABLE, "network")


async def test_a_migrated_group_gets_the_message_at_its_new_id(
    channel: TelegramChannel, fake: FakeBotApi
) -> None:
    fake.migrate_next("sendMessage", -1001234)
    result = await channel.send(message("Hello group"))
    first, second = fake.calls_to("sendMessage")
    assert (first.params["chat_id"], second.params["chat_id"]) == ("42", "-1001234")
    assert result.provider_message_id == "1"


async def test_initialize_checks_the_token(channel: TelegramChannel, fake: FakeBotApi) -> None:
    await channel.initialize()
    assert [call.method for call in fake.calls] == ["getMe"]
    assert channel.bot.username == "learnbot_bot"


def test_from_settings_needs_a_token() -> None:
    with pytest.raises(ValueError, match="TELEGRAM_BOT_TOKEN"):
        TelegramChannel.from_settings(Settings())


async def test_bold_ranges_go_as_entities_and_the_text_as_it_is(
    channel: TelegramChannel, fake: FakeBotApi
) -> None:
    # An author's title with HTML-like characters: sent as typed, nothing escaped or parsed.
    text = "👋 <b>Data</b> & you\n\nBody"
    await channel.send(message(text, bold=((0, len("👋 <b>Data</b> & you")),)))

    [call] = fake.calls_to("sendMessage")
    assert call.params["text"] == text and "parse_mode" not in call.params
    # Offsets and lengths in UTF-16 units: the emoji counts two.
    assert json.loads(call.params["entities"]) == [{"type": "bold", "offset": 0, "length": 20}]


async def test_bold_follows_the_caption_and_the_pieces_after_it(
    channel: TelegramChannel, fake: FakeBotApi
) -> None:
    body = "\n\n".join(["Title", "a" * 800, "b" * 800])
    await channel.send(
        message(body, image_url="https://example.org/i.png", bold=((0, 5), (812, 814)))
    )

    [photo] = fake.calls_to("sendPhoto")
    [rest] = fake.calls_to("sendMessage")
    caption_entities = json.loads(photo.params["caption_entities"])
    assert caption_entities == [{"type": "bold", "offset": 0, "length": 5}]
    assert json.loads(rest.params["entities"]) == [{"type": "bold", "offset": 3, "length": 2}]
