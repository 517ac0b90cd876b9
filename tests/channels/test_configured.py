"""Which channels the settings turn on: what `serve` sends on, and what a push can reach."""

from __future__ import annotations

import pytest

from bot.channels.configured import configured_channels, needed_settings
from bot.config import Settings
from bot.domain import ChannelName
from bot.runtime import twilio_channels

TWILIO = {"twilio_account_sid": "AC" + "0" * 32, "twilio_auth_token": "token"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, set()),  # what `make run` gives: the sandbox only
        ({"telegram_bot_token": "1:x"}, {"telegram"}),
        ({"twilio_sms_from": "+15005550006"}, set()),  # a sender without credentials
        ({**TWILIO}, set()),  # credentials without a sender
        ({**TWILIO, "twilio_messaging_service_sid": "MG1"}, {"sms"}),
        ({**TWILIO, "twilio_whatsapp_from": "whatsapp:+15005550006"}, {"whatsapp"}),
    ],
)
async def test_the_channels_a_push_can_reach_are_those_serve_builds(
    values: dict[str, str], expected: set[str]
) -> None:
    settings = Settings(**values)  # type: ignore[arg-type]
    assert configured_channels(settings) == {ChannelName.SANDBOX, *map(ChannelName, expected)}
    built = twilio_channels(settings) if settings.twilio_enabled else {}
    assert set(built) == expected - {"telegram"}
    for channel in built.values():
        await channel.aclose()  # type: ignore[attr-defined]


def test_each_channel_names_what_to_set() -> None:
    assert needed_settings("telegram") == "TELEGRAM_BOT_TOKEN"
    assert "TWILIO_WHATSAPP_FROM" in needed_settings("whatsapp")
    assert needed_settings("sandbox") == "" and needed_settings("fax") == ""
