"""SMS and WhatsApp through the twilio SDK's async client: one class, two instances."""

from __future__ import annotations

import base64
import contextvars
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.channels.base import SendError, SendErrorKind
from bot.channels.phone import WHATSAPP_PREFIX, twilio_address
from bot.config import ConfigError, Settings
from bot.domain import ChannelName, RenderedMessage, SendResult

log = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/twilio/status"
DEFAULT_TIMEOUT = 15.0

# Twilio error codes: https://www.twilio.com/docs/api/errors
OPTED_OUT_CODES = frozenset({21610})  # the recipient replied STOP at the carrier
UNREACHABLE_CODES = frozenset({21211, 21614, 30003, 30005, 30006})  # invalid, landline, gone
FILTERED_CODES = frozenset({30007})  # carrier or Twilio filtered the content
WINDOW_CLOSED_CODES = frozenset({63016})  # WhatsApp: outside the 24-hour session window
RETRYABLE_CODES = frozenset({20429})  # too many requests


def error_kind(code: int | None, status: int | None = None) -> SendErrorKind:
    """Classify a Twilio error code (or, failing that, an HTTP status) for the dispatcher."""
    if code in OPTED_OUT_CODES:
        return SendErrorKind.OPTED_OUT
    if code in UNREACHABLE_CODES:
        return SendErrorKind.UNREACHABLE
    if code in FILTERED_CODES:
        return SendErrorKind.FILTERED
    if code in WINDOW_CLOSED_CODES:
        return SendErrorKind.WINDOW_CLOSED
    if code in RETRYABLE_CODES or status == 429 or (status is not None and status >= 500):
        return SendErrorKind.RETRYABLE
    return SendErrorKind.PERMANENT


@dataclass(slots=True)
class _Exchange:
    """The response headers of the request made inside one `send`, for Retry-After."""

    headers: Mapping[str, str] = field(default_factory=dict)


# Per task, so concurrent sends never read each other's headers: the SDK's exceptions drop them.
_exchange: contextvars.ContextVar[_Exchange | None] = contextvars.ContextVar(
    "twilio_exchange", default=None
)


class LearnbotTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's async HTTP client with a request timeout, a base URL override and headers kept."""

    def __init__(self, *, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(pool_connections=False, timeout=timeout)
        self._base = urlsplit(base_url) if base_url else None
        self._timeout = timeout
        # Created on first use, inside the running loop (aiohttp wants one).
        self.session: aiohttp.ClientSession | None = None

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """One debug line per request: the SDK's own logs a dozen INFO lines, headers included."""
        log.debug("Twilio %s %s", kwargs["method"], kwargs["url"])

    def log_response(self, status_code: int, response: Any) -> None:
        """One debug line per response."""
        log.debug("Twilio answered %s", status_code)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request, to the overriding base URL if one is set."""
        if self.session is None:
            self.session = aiohttp.ClientSession()
        if self._base is not None:
            # The SDK composes https://api.twilio.com/2010-04-01/...; keep its path.
            parts = urlsplit(url)
            path = self._base.path.rstrip("/") + parts.path
            rebased = parts._replace(scheme=self._base.scheme, netloc=self._base.netloc, path=path)
            url = rebased.geturl()
        if auth is not None:
            # aiohttp deprecates its BasicAuth, which the parent would build: send the header.
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        # The parent ignores its own timeout (aiohttp reads None as "no timeout"): pass it.
        response: Response = await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout if timeout is not None else self._timeout,
            allow_redirects=allow_redirects,
        )
        exchange = _exchange.get()
        if exchange is not None:
            exchange.headers = dict(response.headers or {})
        return response


class TwilioChannel:
    """Sends SMS or WhatsApp messages through Twilio; raises `SendError` on refusal."""

    def __init__(
        self,
        channel: ChannelName,
        *,
        account_sid: str,
        auth_token: str,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        api_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if channel not in (ChannelName.SMS, ChannelName.WHATSAPP):
            raise ValueError(f"TwilioChannel carries sms or whatsapp, not {channel}")
        if from_ is None and messaging_service_sid is None:
            raise ValueError(f"{channel}: a sender (from_ or messaging_service_sid) is needed")
        self._channel = channel
        self._from = from_
        self._messaging_service_sid = messaging_service_sid
        self._status_callback = status_callback
        self._http = LearnbotTwilioHttpClient(base_url=api_url, timeout=timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http)

    @classmethod
    def sms_from_settings(cls, settings: Settings) -> TwilioChannel:
        """The SMS channel: from TWILIO_SMS_FROM, or else TWILIO_MESSAGING_SERVICE_SID."""
        sid, token = _credentials(settings)
        if settings.twilio_sms_from is None and settings.twilio_messaging_service_sid is None:
            raise ConfigError("TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID: one is needed")
        return cls(
            ChannelName.SMS,
            account_sid=sid,
            auth_token=token,
            from_=settings.twilio_sms_from,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            status_callback=settings.public_url + STATUS_PATH,
            api_url=settings.twilio_api_url,
        )

    @classmethod
    def whatsapp_from_settings(cls, settings: Settings) -> TwilioChannel:
        """The WhatsApp channel, from TWILIO_WHATSAPP_FROM (whatsapp:+E164)."""
        sid, token = _credentials(settings)
        if settings.twilio_whatsapp_from is None:
            raise ConfigError("TWILIO_WHATSAPP_FROM: needed for WhatsApp")
        return cls(
            ChannelName.WHATSAPP,
            account_sid=sid,
            auth_token=token,
            from_=settings.twilio_whatsapp_from,
            status_callback=settings.public_url + STATUS_PATH,
            api_url=settings.twilio_api_url,
        )

    @property
    def name(self) -> ChannelName:
        """`ChannelName.SMS` or `ChannelName.WHATSAPP`."""
        return self._channel

    async def send(self, message: RenderedMessage) -> SendResult:
        """Create one Twilio message; its SID and the segments it cost."""
        exchange = _Exchange()
        token = _exchange.set(exchange)
        try:
            created = await self._client.messages.create_async(**self._params(message))
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _send_error(exc, exchange.headers) from exc
        except TimeoutError as exc:
            raise SendError(SendErrorKind.RETRYABLE, "timed out waiting for Twilio") from exc
        except aiohttp.ClientError as exc:
            raise SendError(SendErrorKind.RETRYABLE, f"cannot reach Twilio: {exc}") from exc
        finally:
            _exchange.reset(token)
        return SendResult(
            provider_message_id=created.sid, segments=_segments(created.num_segments, message)
        )

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.close()

    def _params(self, message: RenderedMessage) -> dict[str, Any]:
        params: dict[str, Any] = {"to": self._address(message.address)}
        if self._from is not None:
            params["from_"] = self._from
        else:
            params["messaging_service_sid"] = self._messaging_service_sid
        if self._status_callback is not None:
            params["status_callback"] = self._status_callback
        if message.content_sid is not None:
            # Outside WhatsApp's 24-hour window only an approved template may go out.
            params["content_sid"] = message.content_sid
            if message.content_variables:
                params["content_variables"] = json.dumps(
                    dict(message.content_variables), ensure_ascii=False
                )
            return params
        params["body"] = message.text
        if message.image_url is not None and self._channel == ChannelName.WHATSAPP:
            params["media_url"] = [message.image_url]
        return params

    def _address(self, address: str) -> str:
        if self._channel == ChannelName.WHATSAPP and not address.startswith(WHATSAPP_PREFIX):
            address = WHATSAPP_PREFIX + address
        if twilio_address(self._channel, address) is None:
            # Defence in depth (the webhooks store only phone numbers): never ask Twilio to
            # send to "hello" or "". Unreachable, not retryable: no retry makes it a number.
            raise SendError(
                SendErrorKind.UNREACHABLE,
                f"the {self._channel} address is not a phone number ({len(address)} characters)",
            )
        return address


def _credentials(settings: Settings) -> tuple[str, str]:
    if settings.twilio_account_sid is None or settings.twilio_auth_token is None:
        raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN: both are needed for Twilio")
    return settings.twilio_account_sid, settings.twilio_auth_token


def _segments(reported: object, message: RenderedMessage) -> int:
    # Twilio reports num_segments as a string, and sometimes not at all (queued, WhatsApp).
    try:
        count = int(str(reported))
    except ValueError:
        return message.segments
    return count if count > 0 else message.segments


def _send_error(
    exc: TwilioRestException | TwilioServiceException, headers: Mapping[str, str]
) -> SendError:
    status = int(exc.status) if exc.status is not None else None
    code = int(exc.code) if exc.code is not None else None
    kind = error_kind(code, status)
    detail = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
    retry_after = _retry_after(headers) if kind == SendErrorKind.RETRYABLE else None
    return SendError(
        kind,
        f"HTTP {status}: {detail}",
        code=str(code) if code is not None else None,
        retry_after=retry_after,
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except ValueError:
                return None  # an HTTP date: rare from Twilio, and backoff covers it
    return None
