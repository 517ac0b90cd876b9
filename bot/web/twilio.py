"""Twilio webhooks: inbound SMS and WhatsApp, and message status callbacks, all signed.

Every request is bounded and authenticated before it is parsed: a body over 64 KB is 413, a
Content-Type other than a urlencoded form 415, a missing or wrong signature 403 (an unsigned
request's body is never read). A signed request that Twilio could never send as it is (no
MessageSid or From, a SID of the wrong form, a Body over Twilio's limit, an ErrorCode that is
not a number) is 400 with the field named: it comes from a tool holding our auth token, not
from Twilio, so no Twilio retry follows it. A signed message whose From is not a phone number
(Twilio does deliver short codes and alphanumeric sender ids) is 200 and one log line: it can
never be answered, and a retry would carry the same From.
"""

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

from bot.channels.phone import WHATSAPP_PREFIX, twilio_address
from bot.channels.twilio import STATUS_PATH, error_kind
from bot.config import Settings
from bot.domain import ChannelName, DeliveryStatus, InboundMessage, OutboundMessage
from bot.store.db import utcnow
from bot.store.delivery_status import CALLBACK_STATUSES, record_status
from bot.web.limits import BodyRefused, declared_length, media_type, plain, read_body
from bot.web.protocols import DialogueLike
from bot.web.twilio_fields import FieldError, body_text, error_code, message_sid, text_field

log = logging.getLogger(__name__)

SMS_PATH = "/webhooks/twilio/sms"
WHATSAPP_PATH = "/webhooks/twilio/whatsapp"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWIML_TYPE = "text/xml"

_TRACKED = frozenset(str(status) for status in CALLBACK_STATUSES)
FORM_TYPE = "application/x-www-form-urlencoded"
# A Twilio webhook form is a few KB (a 1,600-character Body, urlencoded, is at most 14 KB).
MAX_FORM_BYTES = 64 * 1024

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
    overrides = settings.twilio_webhook_overrides

    async def verified_form(request: Request) -> FormData | Response:
        """The form of a signed request, or the refusal: 413, 415, 403, before any parsing."""
        try:
            declared_length(request, MAX_FORM_BYTES)
        except BodyRefused as refused:
            return refused.response()
        if media_type(request) != FORM_TYPE:
            # Twilio posts only urlencoded forms to these webhooks (never multipart): the
            # signature is defined over exactly those parameters.
            return plain(f"Content-Type must be {FORM_TYPE}", 415)
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            return _forbidden()  # not signed: the body is not even read
        try:
            body = await read_body(request, MAX_FORM_BYTES)
        except BodyRefused as refused:
            return refused.response()
        form = _parse_form(body)
        # Twilio signs the URL it called: ours as the public sees it, not the Host behind a proxy.
        url = public_url + request.url.path
        query = request.scope.get("query_string", b"")
        if query:
            url += "?" + query.decode("latin-1")
        algorithm = get_signature_algorithm(
            request.headers.get("X-Twilio-Webhooks-Signature-Settings")
        )
        # The connection overrides after "#" never reach us; whether Twilio signs the URL with
        # them is not documented, so both forms are accepted (the second costs an HMAC only
        # when the first fails).
        candidates = (url, f"{url}#{overrides}") if overrides else (url,)
        for candidate in candidates:
            if query or (algorithm or HMAC_SHA1).upper() not in _FAST_ALGORITHMS:
                # A query (it may carry bodySHA256) or an odd algorithm: the SDK's whole check.
                if validator.validate(candidate, form, signature, algorithm):
                    return form
                continue
            # RequestValidator.validate's own rule (the URL without its port, or with it), with
            # the two URL variants computed once per path and the second HMAC only if needed.
            for variant in _url_variants(candidate):
                if compare(validator.compute_signature(variant, form, algorithm), signature):
                    return form
        return _forbidden()

    def inbound(channel: ChannelName) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            form = await verified_form(request)
            if isinstance(form, Response):
                return form
            try:
                sid = message_sid(form)
                raw_sender = text_field(form, "From")
                if not raw_sender:
                    raise FieldError("From is missing")
                text = body_text(form, channel)
            except FieldError as exc:
                return plain(str(exc), 400)
            sender = twilio_address(channel, raw_sender)
            if sender is None:
                # Twilio does deliver such senders (short codes, alphanumeric ids, a WhatsApp
                # sender on the SMS URL); none can be answered, and a retry would be the same.
                log.warning(
                    "twilio %s %s: From is not a phone number (%d characters): not processed",
                    channel,
                    sid,
                    len(raw_sender),
                )
                return _empty_twiml()
            message = InboundMessage(
                channel=channel,
                address=sender,
                text=text,
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
        if isinstance(form, Response):
            return form
        try:
            sid = message_sid(form)
            code = error_code(form)
        except FieldError as exc:
            return plain(str(exc), 400)
        raw_status = text_field(form, "MessageStatus", "SmsStatus")
        if raw_status not in _TRACKED:
            # Statuses we do not track (accepted, scheduled, sending, ...): acknowledge them.
            return _empty_twiml()
        new_status = DeliveryStatus(raw_status)
        to = text_field(form, "To")
        channel = ChannelName.WHATSAPP if to.startswith(WHATSAPP_PREFIX) else ChannelName.SMS
        address = twilio_address(channel, to)  # None: the policy has no learner to find
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
                    address=address,
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
        return _empty_twiml()

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


def _parse_form(body: bytes) -> FormData:
    """A urlencoded body, parsed by the stdlib (python-multipart's pure-Python parser cost
    more than the rest of the signature check)."""
    fields: list[tuple[str, str | UploadFile]] = list(
        parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    )
    return FormData(fields)


def _empty_twiml() -> Response:
    return Response(EMPTY_TWIML, media_type=TWIML_TYPE)


def _forbidden() -> Response:
    return plain("the X-Twilio-Signature is missing or wrong", 403)
