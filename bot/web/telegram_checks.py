"""The fields of a Telegram update that the bot reads, checked on the decoded JSON.

PTB's `Update.de_json` either raises on odd shapes (a message without `chat`, `date: 1e20`)
or builds objects whose fields have the wrong types (`text` as a number); so the few fields we
read are checked here first, with Telegram's own limits, and `unusable` names the first one
that is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_ID = 2**53  # Telegram: chat and user ids have at most 52 significant bits
MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can hold
MAX_TEXT_CHARS = 4096  # Telegram's limit for a message's text
MAX_CALLBACK_DATA_BYTES = 64  # Telegram's limit for a button's callback_data
MAX_SHORT_TEXT = 256  # ids and codes Telegram sends as strings (callback query id, chat type)
MAX_LANGUAGE_TAG = 35  # an IETF language tag


def unusable(update: Mapping[str, Any]) -> str | None:
    """Why the bot could never process this update (the field, in plain words), or None."""
    problem = _integer(update, "update_id", 0, MAX_ID, required=True)
    if problem is None and "message" in update:
        problem = _message(update["message"], "message", with_text=True)
    if problem is None and "callback_query" in update:
        problem = _callback_query(update["callback_query"])
    return problem


def _message(message: Any, path: str, *, with_text: bool) -> str | None:
    if not isinstance(message, Mapping):
        return f"{path} is not an object"
    problem = (
        _integer(message, "message_id", 0, MAX_ID, required=True, path=path)
        or _integer(message, "date", 0, MAX_TIMESTAMP, required=True, path=path)
        or _chat(message.get("chat"), f"{path}.chat")
        or _user(message.get("from"), f"{path}.from", required=False)
    )
    if problem is None and with_text and "text" in message:
        problem = _text(message["text"], f"{path}.text", MAX_TEXT_CHARS)
    return problem


def _callback_query(query: Any) -> str | None:
    path = "callback_query"
    if not isinstance(query, Mapping):
        return f"{path} is not an object"
    problem = _short_text(query.get("id"), f"{path}.id", required=True) or _user(
        query.get("from"), f"{path}.from", required=True
    )
    if problem is None and "data" in query:
        data = query["data"]
        problem = _text(data, f"{path}.data", MAX_CALLBACK_DATA_BYTES)
        if problem is None and len(data.encode()) > MAX_CALLBACK_DATA_BYTES:
            problem = f"{path}.data is longer than {MAX_CALLBACK_DATA_BYTES} bytes"
    if problem is None and query.get("message") is not None:
        problem = _message(query["message"], f"{path}.message", with_text=False)
    return problem


def _chat(chat: Any, path: str) -> str | None:
    if chat is None:
        return f"{path} is missing"
    if not isinstance(chat, Mapping):
        return f"{path} is not an object"
    return _integer(chat, "id", -MAX_ID, MAX_ID, required=True, path=path) or _short_text(
        chat.get("type"), f"{path}.type", required=True
    )


def _user(user: Any, path: str, *, required: bool) -> str | None:
    if user is None:
        return f"{path} is missing" if required else None
    if not isinstance(user, Mapping):
        return f"{path} is not an object"
    problem = _integer(user, "id", -MAX_ID, MAX_ID, required=True, path=path)
    if problem is None and user.get("language_code") is not None:
        code = user["language_code"]
        if not isinstance(code, str) or not 0 < len(code) <= MAX_LANGUAGE_TAG:
            problem = f"{path}.language_code is not a language tag"
    return problem


def _integer(
    parent: Mapping[str, Any],
    key: str,
    low: int,
    high: int,
    *,
    required: bool,
    path: str = "",
) -> str | None:
    name = f"{path}.{key}" if path else key
    if key not in parent:
        return f"{name} is missing" if required else None
    value = parent[key]
    # bool is an int in Python, and 1e20 or 5.0 are not Telegram's integers.
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{name} is not an integer"
    if not low <= value <= high:
        return f"{name} is out of range"
    return None


def _short_text(value: Any, name: str, *, required: bool) -> str | None:
    if value is None:
        return f"{name} is missing" if required else None
    return _text(value, name, MAX_SHORT_TEXT)


def _text(value: Any, name: str, limit: int) -> str | None:
    if not isinstance(value, str):
        return f"{name} is not a string"
    if len(value) > limit:
        return f"{name} is longer than {limit} characters"
    if "\x00" in value:
        return f"{name} contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): JSON allows it, UTF-8 does not
        return f"{name} is not valid Unicode"
    return None
