"""The /sandbox routes: the chat-simulator page, sending a message, long-polling replies."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.channels.base import Channel
from bot.channels.sandbox import Preview, SandboxChannel, SandboxEntry
from bot.delivery import deliver
from bot.domain import ChannelName, InboundMessage, OutboundMessage, RenderedMessage
from bot.lessons.render import render
from bot.web.limits import BodyRefused, read_body
from bot.web.locale import negotiate
from bot.web.protocols import DialogueLike, UiCatalogsLike
from bot.web.sandbox_limits import SandboxLimits, TokenBuckets, client_key, retry_after
from bot.web.sandbox_page import render_sandbox_page

log = logging.getLogger(__name__)

ADDRESS_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{7,63}")
MAX_TEXT_CHARS = 400
MAX_PAYLOAD_BYTES = 64
MAX_BODY_BYTES = 4096
MAX_AFTER = 10**18  # far past any cursor; keeps the cursor a plain 64-bit number
MAX_POLL_SECONDS = 25.0
JSON_TYPE = "application/json"
_ASCII_DIGITS = re.compile(r"[0-9]{1,18}")
_SECONDS = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,6})?")
# C0 controls but tab and newlines, and DEL: no keyboard types them, and PostgreSQL
# refuses NUL in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FULL_RETRY_SECONDS = 60
PREVIEW_CHANNELS = (ChannelName.TELEGRAM, ChannelName.SMS)
# The page is public: nothing but our own script and style runs on it; lesson images may
# come from any https host.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src https: http: data:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class InputError(ValueError):
    """A request field is missing or wrong; `field` names it."""

    def __init__(self, field: str, detail: str, status_code: int = 400) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
        self.status_code = status_code

    def response(self) -> JSONResponse:
        """The JSON error answer."""
        return JSONResponse({"error": str(self), "field": self.field}, status_code=self.status_code)


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A validated POST /sandbox/messages body."""

    address: str
    text: str | None
    payload: str | None
    after: int | None


def sandbox_routes(
    *,
    dialogue: DialogueLike,
    channels: Mapping[ChannelName, Channel],
    sandbox: SandboxChannel,
    ui: UiCatalogsLike,
    sms_max_segments: int = 3,
    limits: SandboxLimits | None = None,
) -> list[Route]:
    """The page and the message API of the chat simulator, rate-limited per client."""
    limits = limits or SandboxLimits()
    per_client = TokenBuckets(limits.per_client)
    per_address = TokenBuckets(limits.messages_per_address)
    new_per_client = TokenBuckets(limits.new_conversations_per_client)

    def throttled(request: Request) -> Response | None:
        wait = per_client.take(client_key(request))
        return _too_many("requests from your connection", wait) if wait else None

    async def page(request: Request) -> Response:
        refused = throttled(request)
        if refused is not None:
            return refused
        locales = list(ui.available_locales())
        locale = negotiate(
            request.query_params.get("lang"),
            request.headers.get("accept-language"),
            locales,
            default=ui.default or ui.source,
        )
        html = render_sandbox_page(
            locale=locale,
            locales=locales,
            translations=ui.translations(locale),
            messages_url=str(request.url_for("sandbox_messages").path),
            css_url=str(request.url_for("static", path="sandbox.css").path),
            js_url=str(request.url_for("static", path="sandbox.js").path),
        )
        headers = {**PAGE_HEADERS, "Content-Language": locale.replace("_", "-")}
        headers["Vary"] = "Accept-Language"
        return HTMLResponse(html, headers=headers)

    async def post_message(request: Request) -> Response:
        refused = throttled(request)
        if refused is not None:
            return refused
        try:
            body = parse_send_request(await _read_json(request))
        except InputError as error:
            return error.response()
        wait = per_address.take(body.address)
        if wait:
            return _too_many("messages in this conversation", wait)
        if not sandbox.knows(body.address):
            wait = new_per_client.take(client_key(request))
            if wait:
                return _too_many("new conversations from your connection", wait)
            if not sandbox.start_conversation(body.address):
                return JSONResponse(
                    {
                        "error": "the sandbox is full; try again in a few minutes",
                        "field": None,
                    },
                    status_code=503,
                    headers={"Retry-After": str(FULL_RETRY_SECONDS)},
                )
        after = sandbox.cursor if body.after is None else body.after
        sandbox.record_inbound(body.address, _shown_text(sandbox, body))
        inbound = InboundMessage(
            channel=ChannelName.SANDBOX,
            address=body.address,
            text=body.text or "",
            payload=body.payload,
            received_at=datetime.now(UTC),
        )
        try:
            replies = await dialogue.handle(inbound)
            for reply in replies:
                results = await deliver([reply], channels, sms_max_segments=sms_max_segments)
                if reply.channel is ChannelName.SANDBOX:
                    ids = [result.provider_message_id or "" for result in results]
                    _attach_previews(sandbox, reply, ids, sms_max_segments)
        except Exception:
            # Not the user's fault: log it, and tell the page in a way it can show.
            log.exception("sandbox: handling a message from %s failed", body.address)
            return JSONResponse(
                {"error": "the bot failed to answer; the error was logged", "field": None},
                status_code=500,
            )
        return _entries_response(sandbox.transcript(body.address, after), after)

    async def poll_messages(request: Request) -> Response:
        refused = throttled(request)
        if refused is not None:
            return refused
        params = request.query_params
        try:
            address = _address(params.get("address"))
            after = _non_negative_int("after", params.get("after", "0"))
            timeout = _timeout(params.get("timeout"))
        except InputError as error:
            return error.response()
        entries = await sandbox.wait_for(address, after, timeout)
        return _entries_response(entries, after)

    return [
        Route("/sandbox", page, methods=["GET"], name="sandbox"),
        Route("/sandbox/messages", post_message, methods=["POST"], name="sandbox_messages"),
        Route("/sandbox/messages", poll_messages, methods=["GET"], name="sandbox_poll"),
    ]


def parse_send_request(body: object) -> SendRequest:
    """Validate a decoded JSON body; raise `InputError` naming the first bad field."""
    if not isinstance(body, dict):
        raise InputError("body", "expected a JSON object")
    unknown = sorted(set(body) - {"address", "text", "payload", "after"})
    if unknown:
        # Named as typed, but escaped and short: the name is the client's, not ours.
        raise InputError(ascii(unknown[0])[1:-1][:40], "unknown field")
    address = _address(body.get("address"))
    text = body.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise InputError("text", "expected a string or null")
        text = _valid_text("text", text).strip()
        if len(text) > MAX_TEXT_CHARS:
            raise InputError("text", f"at most {MAX_TEXT_CHARS} characters, got {len(text)}")
    payload = body.get("payload")
    if payload is not None:
        if not isinstance(payload, str):
            raise InputError("payload", "expected a string or null")
        size = len(_valid_text("payload", payload).encode("utf-8"))
        if size > MAX_PAYLOAD_BYTES:
            raise InputError("payload", f"at most {MAX_PAYLOAD_BYTES} bytes, got {size}")
    if not text and not payload:
        raise InputError("text", "either text or payload must be non-empty")
    after = body.get("after")
    if after is not None and (
        isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_AFTER
    ):
        raise InputError("after", "expected a non-negative integer or null")
    return SendRequest(address=address, text=text or None, payload=payload or None, after=after)


def entry_json(entry: SandboxEntry) -> dict[str, Any]:
    """One transcript entry as the page reads it."""
    preview = entry.preview
    return {
        "seq": entry.seq,
        "id": entry.provider_message_id,
        "from_learner": entry.from_learner,
        **_part_json(entry.message),
        "image_alt": preview.image_alt if preview else None,
        "preview": None
        if preview is None
        else {
            "first": preview.first,
            **{
                str(name): [_part_json(part) for part in parts]
                for name, parts in preview.parts.items()
            },
        },
    }


def _part_json(message: RenderedMessage) -> dict[str, Any]:
    return {
        "text": message.text,
        "buttons": [{"label": b.label, "payload": b.payload} for b in message.buttons],
        "image_url": message.image_url,
        "encoding": message.encoding,
        "segments": message.segments,
        # [start, end) in code points (the page slices Array.from(text)), as Telegram shows bold.
        "bold": [list(span) for span in message.bold],
    }


def _entries_response(entries: list[SandboxEntry], after: int) -> JSONResponse:
    cursor = max((entry.seq for entry in entries), default=after)
    return JSONResponse({"messages": [entry_json(e) for e in entries], "cursor": cursor})


def _attach_previews(
    sandbox: SandboxChannel, reply: OutboundMessage, ids: list[str], sms_max_segments: int
) -> None:
    if not ids:
        return
    parts = {
        name: tuple(render(replace(reply, channel=name), sms_max_segments=sms_max_segments))
        for name in PREVIEW_CHANNELS
    }
    alt = reply.image.alt if reply.image else None
    sandbox.attach_preview(reply.address, ids[0], Preview(image_alt=alt, parts=parts))
    for later in ids[1:]:
        sandbox.attach_preview(reply.address, later, Preview(image_alt=alt, first=False))


def _shown_text(sandbox: SandboxChannel, body: SendRequest) -> str:
    """What the learner sees as their own message: the text, or the pressed button's label."""
    if body.text:
        return body.text
    for entry in reversed(sandbox.transcript(body.address)):
        for button in entry.message.buttons:
            if button.payload == body.payload:
                return button.label
    return body.payload or ""


async def _read_json(request: Request) -> object:
    """The JSON body, refused unread when declared too large and cut off past the cap."""
    declared = request.headers.get("content-length", "")
    if declared and not _ASCII_DIGITS.fullmatch(declared):
        raise InputError("Content-Length", "expected a number of bytes")
    if declared and int(declared) > MAX_BODY_BYTES:
        raise InputError("body", f"at most {MAX_BODY_BYTES} bytes", status_code=413)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type and media_type != JSON_TYPE:
        raise InputError("Content-Type", f"expected {JSON_TYPE}", status_code=415)
    try:
        chunks = await read_body(request, MAX_BODY_BYTES)  # cut off as soon as it passes the cap
    except BodyRefused as refused:
        raise InputError("body", refused.reason, status_code=refused.status) from None
    try:
        return json.loads(chunks.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("body", "not valid UTF-8") from None
    except RecursionError:
        raise InputError("body", "JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise InputError("body", f"not valid JSON: {exc.msg} at character {exc.pos}") from None
    except ValueError:  # e.g. an integer over Python's digit limit
        raise InputError("body", "not valid JSON") from None


def _valid_text(field: str, value: str) -> str:
    """`value` if it is text we can store and send back: UTF-8, no control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate ("\ud800") decodes from JSON but can be neither stored nor sent.
        raise InputError(field, "not valid Unicode text (a lone surrogate)") from None
    if _CONTROL.search(value):
        raise InputError(field, "control characters are not allowed")
    return value


def _too_many(what: str, wait: float) -> JSONResponse:
    seconds = retry_after(wait)
    return JSONResponse(
        {"error": f"too many {what}; try again in {seconds} s", "field": None},
        status_code=429,
        headers={"Retry-After": seconds},
    )


def _address(value: object) -> str:
    if not isinstance(value, str) or not ADDRESS_PATTERN.fullmatch(value):
        raise InputError(
            "address",
            "expected 8 to 64 letters, digits, '-' or '_', starting with a letter or digit",
        )
    return value


def _non_negative_int(field: str, value: str) -> int:
    # ASCII digits only: str.isdigit() and int() also take "²" and "٣", and disagree on them.
    if not _ASCII_DIGITS.fullmatch(value):
        raise InputError(field, "expected a non-negative integer of at most 18 digits 0-9")
    return int(value)


def _timeout(value: str | None) -> float:
    if value is None:
        return MAX_POLL_SECONDS
    if not _SECONDS.fullmatch(value):
        raise InputError("timeout", "expected seconds, such as 25 or 0.5")
    seconds = float(value)
    if not 0 <= seconds <= MAX_POLL_SECONDS:
        raise InputError("timeout", f"expected 0 to {MAX_POLL_SECONDS:g} seconds")
    return seconds
