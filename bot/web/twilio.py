"""Twilio webhooks: inbound SMS and WhatsApp, and message status callbacks, all signed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from twilio.request_validator import RequestValidator, get_signature_algorithm

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

OnReplies = Callable[[Sequence[OutboundMessage]], Awaitable[None]]


def twilio_routes(
    *,
    settings: Settings,
    dialogue: DialogueLike,
    engine: AsyncEngine,
    on_replies: OnReplies,
) -> list[BaseRoute]:
    """The three Twilio webhook routes; every request must carry a valid X-Twilio-Signature."""
    if settings.twilio_auth_token is None:
        raise ValueError("twilio_routes needs TWILIO_AUTH_TOKEN to check signatures")
    validator = RequestValidator(settings.twilio_auth_token)
    public_url = settings.public_url.rstrip("/")

    async def verified_form(request: Request) -> FormData | None:
        form = await request.form()
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            return None
        # Twilio signs the URL it called: ours as the public sees it, not the Host behind a proxy.
        url = public_url + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        algorithm = get_signature_algorithm(
            request.headers.get("X-Twilio-Webhooks-Signature-Settings")
        )
        return form if validator.validate(url, form, signature, algorithm) else None

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
        async with engine.begin() as conn:
            await record_status(
                conn,
                provider_message_id=sid,
                status=new_status,
                error_code=str(code) if code is not None else None,
                failure=error_kind(code) if code is not None else None,
                channel=channel,
                address=to.removeprefix(WHATSAPP_PREFIX) or None,
                now=utcnow(),
            )
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


def _forbidden() -> Response:
    return Response("invalid Twilio signature", 403)
