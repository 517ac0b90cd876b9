"""The Channel protocol every provider implements, and the typed error it raises."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.domain import ChannelName, InboundMessage, OutboundMessage, RenderedMessage, SendResult

__all__ = [
    "Channel",
    "InboundMessage",
    "OutboundMessage",
    "RenderedMessage",
    "SendError",
    "SendErrorKind",
    "SendResult",
]


@runtime_checkable
class Channel(Protocol):
    """Transmits one already-rendered message to a provider; knows nothing of retries."""

    @property
    def name(self) -> ChannelName:
        """Which channel this is, as stored on learners and deliveries."""
        ...

    async def send(self, message: RenderedMessage) -> SendResult:
        """Send one message; raise `SendError` when the provider refuses it."""
        ...


class SendErrorKind(StrEnum):
    """Why a send failed; the dispatcher alone decides what follows from it."""

    RETRYABLE = "retryable"  # rate limited, timeout, 5xx: try again later
    PERMANENT = "permanent"  # malformed request, bad credentials: retrying will not help
    OPTED_OUT = "opted_out"  # the learner blocked the bot or replied STOP at the carrier
    WINDOW_CLOSED = "window_closed"  # WhatsApp 24 h window: only a template may be sent
    UNREACHABLE = "unreachable"  # the address cannot receive (landline, deleted chat)
    FILTERED = "filtered"  # the carrier or provider filtered the content


class SendError(Exception):
    """A provider refused a message; `kind` classifies it, `code` is the provider's own."""

    def __init__(
        self,
        kind: SendErrorKind,
        detail: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{kind}: {detail}" + (f" (code {code})" if code else ""))
        self.kind = kind
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
