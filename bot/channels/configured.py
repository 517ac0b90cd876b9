"""Which channels the settings can send on, and the settings each missing one needs.

`serve` builds a channel only when its credentials and sender are set; a delivery on any
other channel is never claimed. A push asks here first, so it can say at once which learners
it cannot reach instead of queueing lessons nobody will send.
"""

from __future__ import annotations

from bot.config import Settings
from bot.domain import ChannelName

# What to set for each channel (a slash: either one), as the README names the variables.
NEEDED: dict[ChannelName, str] = {
    ChannelName.TELEGRAM: "TELEGRAM_BOT_TOKEN",
    ChannelName.SMS: "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
    "TWILIO_SMS_FROM/TWILIO_MESSAGING_SERVICE_SID",
    ChannelName.WHATSAPP: "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM",
}


def sms_configured(settings: Settings) -> bool:
    """Twilio credentials and an SMS sender (a number or a messaging service)."""
    return settings.twilio_enabled and bool(
        settings.twilio_sms_from or settings.twilio_messaging_service_sid
    )


def whatsapp_configured(settings: Settings) -> bool:
    """Twilio credentials and a WhatsApp sender."""
    return settings.twilio_enabled and bool(settings.twilio_whatsapp_from)


def configured_channels(settings: Settings) -> frozenset[ChannelName]:
    """The channels `serve` sends on with these settings (the sandbox always)."""
    channels = {ChannelName.SANDBOX}
    if settings.telegram_enabled:
        channels.add(ChannelName.TELEGRAM)
    if sms_configured(settings):
        channels.add(ChannelName.SMS)
    if whatsapp_configured(settings):
        channels.add(ChannelName.WHATSAPP)
    return frozenset(channels)


def needed_settings(channel: str) -> str:
    """The settings that turn `channel` on (empty for one that needs none)."""
    try:
        return NEEDED[ChannelName(channel)]
    except (ValueError, KeyError):
        return ""
