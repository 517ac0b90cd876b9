"""The fields of a signed Twilio webhook, checked before anything is stored.

Each check raises `FieldError` with plain words naming the field; the route answers 400.
"""

from __future__ import annotations

import re

from starlette.datastructures import FormData

from bot.domain import ChannelName

# A message SID: SM (or MM with media) and 32 hex digits; 34 characters in all.
_MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-fA-F]{32}")
# ASCII digits only: "²".isdigit() is True and int("²") fails. Twilio's codes have 5 digits.
_ERROR_CODE = re.compile(r"[0-9]{1,9}")
# Twilio joins a long inbound SMS into one Body of at most 1,600 characters; WhatsApp's own
# limit for a text message is 4,096.
MAX_BODY_CHARS = {ChannelName.SMS: 1600, ChannelName.WHATSAPP: 4096}


class FieldError(Exception):
    """A field of a signed request that Twilio would never send as it is."""


def text_field(form: FormData, *names: str) -> str:
    """The first of `names` present in the form, as text ("" if none)."""
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def message_sid(form: FormData) -> str:
    """MessageSid (or the older SmsSid); FieldError if missing or not a message SID."""
    sid = text_field(form, "MessageSid", "SmsSid")
    if not sid:
        raise FieldError("MessageSid is missing")
    if not _MESSAGE_SID.fullmatch(sid):
        raise FieldError("MessageSid is not a Twilio message SID (SM or MM and 32 hex digits)")
    return sid


def body_text(form: FormData, channel: ChannelName) -> str:
    """Body, without NUL characters (no store keeps them); FieldError if over the limit."""
    body = text_field(form, "Body").replace("\x00", "")
    limit = MAX_BODY_CHARS.get(channel, MAX_BODY_CHARS[ChannelName.SMS])
    if len(body) > limit:
        raise FieldError(f"Body is longer than {limit} characters")
    return body


def error_code(form: FormData) -> int | None:
    """ErrorCode as a number (None if absent or 0); FieldError if it is not ASCII digits."""
    raw = text_field(form, "ErrorCode").strip()
    if not raw:
        return None
    if not _ERROR_CODE.fullmatch(raw):
        raise FieldError("ErrorCode is not a number")
    return int(raw) or None
