"""Is this an address a Twilio channel can reach: an E.164 phone number (WhatsApp: prefixed)."""

from __future__ import annotations

import re

import phonenumbers

from bot.domain import ChannelName

WHATSAPP_PREFIX = "whatsapp:"
# "+", a country code that does not start with 0, at most 15 digits in all (ITU E.164), ASCII
# digits only: phonenumbers alone would read "+２５４..." (fullwidth) or "+254 712-345" too.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def e164(value: str) -> str | None:
    """`value` if it is an E.164 number of a possible length for its country, else None.

    Possible, not valid: phonenumbers' validity follows its metadata of allocated ranges, and a
    newly allocated range would turn a real learner away until the library is upgraded.
    """
    if not _E164.fullmatch(value):
        return None
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    return value if phonenumbers.is_possible_number(number) else None


def twilio_address(channel: ChannelName, value: str) -> str | None:
    """The E.164 number in a Twilio `From`/`To` for `channel` (WhatsApp: `whatsapp:+E164`)."""
    if channel == ChannelName.WHATSAPP:
        if not value.startswith(WHATSAPP_PREFIX):
            return None
        return e164(value.removeprefix(WHATSAPP_PREFIX))
    return e164(value)
