"""No secret reaches a log line: the real libraries' own log output, through the secret filter."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import Bot
from telegram.error import InvalidToken
from twilio.http.async_http_client import AsyncTwilioHttpClient

from bot.channels.telegram import TelegramChannel
from bot.channels.twilio import TwilioChannel
from bot.config import Settings
from bot.domain import ChannelName, RenderedMessage
from bot.redaction import MASK, Redactor, install_secret_filter, redactor_for
from tests.fakes.telegram import TOKEN, FakeBotApi
from tests.fakes.twilio import FakeTwilio

AUTH_TOKEN = "twilio-auth-token-0123456789abcdef"
WEBHOOK_SECRET = "webhook-secret_0123456789"
SECRET_KEY = "a-secret-key-nobody-may-read-0123"
DB_PASSWORD = "pg-pass-w0rd"


def _settings(**overrides: str) -> Settings:
    values = {
        "telegram_bot_token": TOKEN,
        "telegram_webhook_secret": WEBHOOK_SECRET,
        "twilio_account_sid": "AC" + "1" * 32,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_sms_from": "+15550001111",
        "secret_key": SECRET_KEY,
        "database_url": f"postgresql+asyncpg://learnbot:{DB_PASSWORD}@db.internal/learnbot",
        "public_url": "https://bot.example.org",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every library logging at DEBUG into caplog, the way a verbose `serve` would."""
    caplog.set_level(logging.DEBUG)
    caplog.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    yield caplog


@pytest.fixture
async def bot_api() -> AsyncIterator[tuple[FakeBotApi, str]]:
    fake = FakeBotApi()
    async with fake.running() as base_url:
        yield fake, base_url


def _secrets_in(text: str) -> list[str]:
    return [s for s in (TOKEN, AUTH_TOKEN, WEBHOOK_SECRET, SECRET_KEY, DB_PASSWORD) if s in text]


async def test_httpx_logs_carry_the_bot_token_unless_filtered(
    debug_logs: pytest.LogCaptureFixture, bot_api: tuple[FakeBotApi, str]
) -> None:
    fake, base_url = bot_api
    async with Bot(fake.token, base_url=base_url) as bot:
        await bot.send_message(42, "hello")
    # What a log looked like before: the token in every "HTTP Request: POST .../bot<token>/...".
    assert TOKEN in debug_logs.text

    debug_logs.clear()
    install_secret_filter(_settings(telegram_api_url=base_url), [debug_logs.handler])
    async with Bot(fake.token, base_url=base_url) as bot:
        await bot.send_message(42, "hello")
        await bot.set_webhook("https://bot.example.org/webhooks/telegram", WEBHOOK_SECRET)
    assert "HTTP Request: POST" in debug_logs.text
    assert f"/bot{MASK}/sendMessage" in debug_logs.text
    assert _secrets_in(debug_logs.text) == []
    assert all(_secrets_in(record.getMessage()) == [] for record in debug_logs.records)


async def test_a_rejected_token_is_masked_in_the_logged_exception(
    debug_logs: pytest.LogCaptureFixture, bot_api: tuple[FakeBotApi, str]
) -> None:
    fake, base_url = bot_api
    install_secret_filter(_settings(telegram_api_url=base_url), [debug_logs.handler])
    fake.fail_next("getMe", 401, "Unauthorized")
    channel = TelegramChannel.from_settings(_settings(telegram_api_url=base_url))
    with pytest.raises(InvalidToken) as raised:
        await channel.initialize()
    await channel.aclose()
    assert TOKEN in str(raised.value)  # PTB quotes the token it was given

    logging.getLogger("bot.test").error("start-up failed: %s", raised.value, exc_info=raised.value)
    assert "start-up failed: The token `***` was rejected" in debug_logs.text
    assert "Traceback" in debug_logs.text  # the exception text is kept, masked
    assert _secrets_in(debug_logs.text) == []
    assert redactor_for(_settings())(str(raised.value)).count(MASK) == 1


@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
async def test_twilio_client_logging_shows_no_auth_token(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    async with FakeTwilio() as fake:
        settings = _settings(twilio_api_url=fake.url)
        install_secret_filter(settings, [debug_logs.handler])
        # The SDK's own client logs each request, its headers and the answer's.
        sdk = AsyncTwilioHttpClient()
        try:
            await sdk.request(
                "POST",
                f"{fake.url}/2010-04-01/Accounts/{settings.twilio_account_sid}/Messages.json",
                data={"To": "+15557654321", "From": "+15550001111", "Body": "hi"},
                auth=(settings.twilio_account_sid, AUTH_TOKEN),
            )
        finally:
            await sdk.close()
        channel = TwilioChannel.sms_from_settings(settings)
        try:
            await channel.send(RenderedMessage(ChannelName.SMS, "+15557654321", "Lesson 1"))
            fake.fail_next(401, 20003, f"Authenticate: token {AUTH_TOKEN} refused")
            with pytest.raises(Exception) as raised:
                await channel.send(RenderedMessage(ChannelName.SMS, "+15557654321", "Lesson 2"))
            logging.getLogger("bot.test").warning("send failed: %r", raised.value)
        finally:
            await channel.aclose()
    assert "-- BEGIN Twilio API Request --" in debug_logs.text
    assert "send failed" in debug_logs.text
    assert _secrets_in(debug_logs.text) == []


def test_every_secret_is_masked_as_written_and_percent_encoded() -> None:
    redact = redactor_for(_settings())
    line = (
        f"https://api.telegram.org/bot{TOKEN}/getMe token={AUTH_TOKEN} "
        f"secret={WEBHOOK_SECRET} key={SECRET_KEY} url=postgresql://learnbot:{DB_PASSWORD}@db "
        "encoded=/bot123456%3ATEST-token_for-the-fake/"
    )
    masked = redact(line)
    assert _secrets_in(masked) == []
    assert "123456%3ATEST" not in masked
    assert masked.count(MASK) == 6


def test_short_values_are_not_secrets_worth_masking_everywhere() -> None:
    assert Redactor(["abc", None, ""])("abc abc") == "abc abc"
