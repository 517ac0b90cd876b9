"""SMS and WhatsApp through the real twilio SDK against a fake Twilio REST server on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot.channels.base import Channel, SendError, SendErrorKind
from bot.channels.twilio import TwilioChannel
from bot.config import ConfigError, Settings
from bot.domain import ChannelName, RenderedMessage
from tests.fakes.twilio import FakeTwilio

ACCOUNT = "AC" + "1" * 32
TOKEN = "test-auth-token"
SERVICE = "MG" + "2" * 32
TEMPLATE = "HX" + "3" * 32


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    """A fake Twilio REST API on a free loopback port."""
    async with FakeTwilio() as server:
        yield server


@pytest.fixture
def settings(fake: FakeTwilio) -> Settings:
    """Twilio credentials and senders, with the API pointed at the fake."""
    return Settings(
        public_url="https://bot.example.org",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_sms_from="+15550001111",
        twilio_whatsapp_from="whatsapp:+15550002222",
        twilio_api_url=fake.url,
    )


@pytest.fixture
async def sms(settings: Settings) -> AsyncIterator[TwilioChannel]:
    """The SMS channel, sending from a number."""
    channel = TwilioChannel.sms_from_settings(settings)
    yield channel
    await channel.aclose()


@pytest.fixture
async def whatsapp(settings: Settings) -> AsyncIterator[TwilioChannel]:
    """The WhatsApp channel."""
    channel = TwilioChannel.whatsapp_from_settings(settings)
    yield channel
    await channel.aclose()


def sms_text(text: str, segments: int = 1) -> RenderedMessage:
    return RenderedMessage(ChannelName.SMS, "+15557654321", text, segments=segments)


async def test_sms_goes_out_from_the_number_with_a_status_callback(
    sms: TwilioChannel, fake: FakeTwilio
) -> None:
    result = await sms.send(sms_text("Lesson 1: users first."))

    sent = fake.messages[-1]
    assert (sent.account_sid, sent.username, sent.password) == (ACCOUNT, ACCOUNT, TOKEN)
    assert sent.params == {
        "To": "+15557654321",
        "From": "+15550001111",
        "Body": "Lesson 1: users first.",
        "StatusCallback": "https://bot.example.org/webhooks/twilio/status",
    }
    assert result.provider_message_id == sent.sid
    assert result.segments == 1
    assert isinstance(sms, Channel) and sms.name == ChannelName.SMS


async def test_sms_through_a_messaging_service(settings: Settings, fake: FakeTwilio) -> None:
    settings = replace(settings, twilio_sms_from=None, twilio_messaging_service_sid=SERVICE)
    channel = TwilioChannel.sms_from_settings(settings)
    try:
        await channel.send(sms_text("Hello"))
    finally:
        await channel.aclose()

    assert fake.messages[-1].params["MessagingServiceSid"] == SERVICE
    assert "From" not in fake.messages[-1].params


async def test_segments_are_what_twilio_counted(sms: TwilioChannel, fake: FakeTwilio) -> None:
    fake.num_segments = 3

    result = await sms.send(sms_text("x" * 400, segments=3))

    assert result.segments == 3


def test_sms_needs_a_sender() -> None:
    settings = Settings(twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN)

    with pytest.raises(ConfigError, match="TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID"):
        TwilioChannel.sms_from_settings(settings)
    with pytest.raises(ConfigError, match="TWILIO_WHATSAPP_FROM"):
        TwilioChannel.whatsapp_from_settings(settings)


async def test_whatsapp_text_is_addressed_whatsapp_e164(
    whatsapp: TwilioChannel, fake: FakeTwilio
) -> None:
    message = RenderedMessage(ChannelName.WHATSAPP, "+15557654321", "1) Yes\n2) No")

    result = await whatsapp.send(message)

    sent = fake.messages[-1]
    assert sent.params["To"] == "whatsapp:+15557654321"
    assert sent.params["From"] == "whatsapp:+15550002222"
    assert sent.params["Body"] == "1) Yes\n2) No"
    assert sent.media_urls == ()
    assert result.provider_message_id == sent.sid


async def test_whatsapp_image_is_sent_as_media(whatsapp: TwilioChannel, fake: FakeTwilio) -> None:
    message = RenderedMessage(
        ChannelName.WHATSAPP,
        "+15557654321",
        "A service map",
        image_url="https://cdn.example.org/map.png",
    )

    await whatsapp.send(message)

    assert fake.messages[-1].media_urls == ("https://cdn.example.org/map.png",)
    assert fake.messages[-1].params["Body"] == "A service map"


async def test_whatsapp_template_sends_content_sid_and_variables(
    whatsapp: TwilioChannel, fake: FakeTwilio
) -> None:
    message = RenderedMessage(
        ChannelName.WHATSAPP,
        "+15557654321",
        "",
        content_sid=TEMPLATE,
        content_variables=(("1", "Agile teams"), ("2", "1")),
    )

    await whatsapp.send(message)

    params = fake.messages[-1].params
    assert params["ContentSid"] == TEMPLATE
    assert json.loads(params["ContentVariables"]) == {"1": "Agile teams", "2": "1"}
    assert "Body" not in params


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, 21610, SendErrorKind.OPTED_OUT),
        (400, 21211, SendErrorKind.UNREACHABLE),
        (400, 21614, SendErrorKind.UNREACHABLE),
        (400, 30003, SendErrorKind.UNREACHABLE),
        (400, 30005, SendErrorKind.UNREACHABLE),
        (400, 30006, SendErrorKind.UNREACHABLE),
        (400, 30007, SendErrorKind.FILTERED),
        (400, 63016, SendErrorKind.WINDOW_CLOSED),
        (429, 20429, SendErrorKind.RETRYABLE),
        (400, 20429, SendErrorKind.RETRYABLE),
        (503, 20500, SendErrorKind.RETRYABLE),
        (400, 21602, SendErrorKind.PERMANENT),  # message body is required
        (401, 20003, SendErrorKind.PERMANENT),  # authentication
    ],
)
async def test_twilio_errors_are_classified(
    sms: TwilioChannel, fake: FakeTwilio, status: int, code: int, kind: SendErrorKind
) -> None:
    fake.fail_next(status, code, "refused by the fake")

    with pytest.raises(SendError) as caught:
        await sms.send(sms_text("Hello"))

    assert caught.value.kind == kind
    assert caught.value.code == str(code)
    assert "refused by the fake" in caught.value.detail


async def test_429_honours_retry_after(sms: TwilioChannel, fake: FakeTwilio) -> None:
    fake.fail_next(429, 20429, "Too Many Requests", headers={"Retry-After": "7"})

    with pytest.raises(SendError) as caught:
        await sms.send(sms_text("Hello"))

    assert caught.value.kind == SendErrorKind.RETRYABLE
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_bare_http_errors_without_json(
    sms: TwilioChannel, fake: FakeTwilio, status: int
) -> None:
    fake.fail_next(status)

    with pytest.raises(SendError) as caught:
        await sms.send(sms_text("Hello"))

    assert caught.value.kind == SendErrorKind.RETRYABLE
    assert caught.value.retry_after is None


async def test_timeout_is_retryable(settings: Settings, fake: FakeTwilio) -> None:
    channel = TwilioChannel(
        ChannelName.SMS,
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        from_="+15550001111",
        api_url=fake.url,
        timeout=0.2,
    )
    fake.delay_next(1.0)
    try:
        with pytest.raises(SendError) as caught:
            await channel.send(sms_text("Hello"))
    finally:
        await channel.aclose()

    assert caught.value.kind == SendErrorKind.RETRYABLE
    assert "timed out" in caught.value.detail


async def test_connection_refused_is_retryable(settings: Settings) -> None:
    port = unused_port()
    channel = TwilioChannel.sms_from_settings(
        replace(settings, twilio_api_url=f"http://127.0.0.1:{port}")
    )
    try:
        with pytest.raises(SendError) as caught:
            await channel.send(sms_text("Hello"))
    finally:
        await channel.aclose()

    assert caught.value.kind == SendErrorKind.RETRYABLE
    assert "cannot reach Twilio" in caught.value.detail


async def test_concurrent_sends_keep_their_own_retry_after(
    sms: TwilioChannel, fake: FakeTwilio
) -> None:
    fake.fail_next(429, 20429, "slow down", headers={"Retry-After": "3"})
    results = await asyncio.gather(
        sms.send(sms_text("first")), sms.send(sms_text("second")), return_exceptions=True
    )

    errors = [r for r in results if isinstance(r, SendError)]
    assert len(errors) == 1 and errors[0].retry_after == 3.0
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 1


def unused_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
