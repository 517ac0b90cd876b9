"""Twilio webhooks: inbound SMS and WhatsApp, and message status callbacks, all signed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from urllib.parse import parse_qsl, urlparse

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.background import BackgroundTask
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    RequestValidator,
    add_port,
    compare,
    get_signature_algorithm,
    remove_port,
)

from bot.channels.twilio import STATUS_PATH, WHATSAPP_PREFIX, error_kind
from bot.config import Settings
from bot.domain import ChannelName, DeliveryStatus, InboundMessage, OutboundMessage
from bot.store.db import utcnow
from bot.store.delivery_status import CALLBACK_STATUSES, record_status
from bot.web.protocols import DialogueLike

log = logging.getLogger(__name__)

SMS_PATH = "/webhooks/twilio/sms"
WHATSAPP_PATH = "/webhooks/twilio/whatsapp"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWIML_TYPE = "text/xml"

_TRACKED = frozenset(str(status) for status in CALLBACK_STATUSES)
FORM_TYPE = "application/x-www-form-urlencoded"

OnReplies = Callable[[Sequence[OutboundMessage]], Awaitable[None]]
# A status callback can come before the dispatcher has written the message's SID (it writes a
# batch's results while it sends the next batch): look again after these pauses (7.75 s in
# all, within Twilio's 15 s webhook timeout) before treating the SID as unknown.
UNMATCHED_STATUS_WAITS = (0.25, 0.5, 1.0, 2.0, 4.0)


def twilio_routes(
    *,
    settings: Settings,
    dialogue: DialogueLike,
    engine: AsyncEngine,
    on_replies: OnReplies,
    unmatched_status_waits: Sequence[float] = UNMATCHED_STATUS_WAITS,
) -> list[BaseRoute]:
    """The three Twilio webhook routes; every request must carry a valid X-Twilio-Signature."""
    if settings.twilio_auth_token is None:
        raise ValueError("twilio_routes needs TWILIO_AUTH_TOKEN to check signatures")
    validator = RequestValidator(settings.twilio_auth_token)
    public_url = settings.public_url.rstrip("/")

    async def verified_form(request: Request) -> FormData | None:
        form = await _form(request)
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            return None
        # Twilio signs the URL it called: ours as the public sees it, not the Host behind a proxy.
        url = public_url + request.url.path
        query = request.scope.get("query_string", b"")
        if query:
            url += "?" + query.decode("latin-1")
        algorithm = get_signature_algorithm(
            request.headers.get("X-Twilio-Webhooks-Signature-Settings")
        )
        if query or (algorithm or HMAC_SHA1).upper() not in _FAST_ALGORITHMS:
            # A query (it may carry bodySHA256) or an odd algorithm: the SDK's whole check.
            return form if validator.validate(url, form, signature, algorithm) else None
        # RequestValidator.validate's own rule (the URL without its port, or with it), with
        # the two URL variants computed once per path and the second HMAC only if needed.
        without_port, with_port = _url_variants(url)
        for variant in (without_port, with_port):
            if compare(validator.compute_signature(variant, form, algorithm), signature):
                return form
        return None

    def inbound(channel: ChannelName) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            form = await verified_form(request)
            if form is None:
                return _forbidden()
            sender = str(form.get("From") or "")
            sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
            if not sender or not sid:
                return Response("From and MessageSid are required", 400)
            message = InboundMessage(
                channel=channel,
                address=sender.removeprefix(WHATSAPP_PREFIX),
                text=str(form.get("Body") or ""),
                provider_id=sid,
                received_at=utcnow(),
            )
            replies = await dialogue.handle(message)
            # Answer Twilio first: the replies go out after the response, so a slow
            # provider call never makes Twilio time out and retry the webhook.
            task = BackgroundTask(_send_replies, on_replies, replies) if replies else None
            return Response(EMPTY_TWIML, media_type=TWIML_TYPE, background=task)

        return endpoint

    async def status(request: Request) -> Response:
        form = await verified_form(request)
        if form is None:
            return _forbidden()
        sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
        raw_status = str(form.get("MessageStatus") or form.get("SmsStatus") or "")
        if not sid or raw_status not in _TRACKED:
            # Statuses we do not track (accepted, scheduled, sending, ...): acknowledge them.
            return Response(EMPTY_TWIML, media_type=TWIML_TYPE)
        new_status = DeliveryStatus(raw_status)
        raw_code = str(form.get("ErrorCode") or "").strip()
        code = int(raw_code) if raw_code.isdigit() and int(raw_code) != 0 else None
        to = str(form.get("To") or "")
        channel = ChannelName.WHATSAPP if to.startswith(WHATSAPP_PREFIX) else ChannelName.SMS
        waits = iter(unmatched_status_waits)
        while True:
            wait = next(waits, None)
            async with engine.begin() as conn:
                outcome = await record_status(
                    conn,
                    provider_message_id=sid,
                    status=new_status,
                    error_code=str(code) if code is not None else None,
                    failure=error_kind(code) if code is not None else None,
                    channel=channel,
                    address=to.removeprefix(WHATSAPP_PREFIX) or None,
                    now=utcnow(),
                    unmatched_policy=wait is None,  # the last look: act on the learner
                )
            if outcome.delivery_id is not None or wait is None:
                break
            await asyncio.sleep(wait)
        if outcome.requeued:
            # A lesson refused for the WhatsApp window is back in the outbox (committed): the
            # dispatcher sends its template now. Read at call time: serve sets it at start-up.
            wake = getattr(dialogue, "on_enqueued", None)
            if callable(wake):
                wake()
        return Response(EMPTY_TWIML, media_type=TWIML_TYPE)

    return [
        Route(SMS_PATH, inbound(ChannelName.SMS), methods=["POST"]),
        Route(WHATSAPP_PATH, inbound(ChannelName.WHATSAPP), methods=["POST"]),
        Route(STATUS_PATH, status, methods=["POST"]),
    ]


async def _send_replies(on_replies: OnReplies, replies: Sequence[OutboundMessage]) -> None:
    try:
        await on_replies(replies)
    except Exception:
        # The turn is committed; a failed direct send must not turn into a Twilio retry.
        log.exception("sending %d replies failed", len(replies))


_FAST_ALGORITHMS = frozenset({HMAC_SHA1, HMAC_SHA256})  # what validate supports


@lru_cache(maxsize=16)
def _url_variants(url: str) -> tuple[str, str]:
    """A webhook URL without and with its port, as RequestValidator.validate tries it."""
    parsed = urlparse(url)
    return remove_port(parsed), add_port(parsed)


async def _form(request: Request) -> FormData:
    """The posted form; Twilio's urlencoded bodies parsed by the stdlib (python-multipart's
    pure-Python parser cost more than the rest of the signature check)."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        return await request.form()
    body = await request.body()
    fields: list[tuple[str, str | UploadFile]] = list(
        parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    )
    return FormData(fields)


def _forbidden() -> Response:
    return Response("invalid Twilio signature", 403)
