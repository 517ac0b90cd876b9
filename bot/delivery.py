"""Direct delivery: render outbound messages and send them at once, in order.

Used by the sandbox and the demo; scheduled sends go through the outbox dispatcher.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from bot.channels.base import Channel
from bot.domain import ChannelName, OutboundMessage, SendResult
from bot.lessons.render import render
from bot.lessons.sms import DEFAULT_SMS_FOLD


async def deliver(
    messages: Sequence[OutboundMessage],
    channels: Mapping[ChannelName, Channel],
    *,
    sms_max_segments: int = 3,
    sms_fold: Collection[str] = DEFAULT_SMS_FOLD,
) -> list[SendResult]:
    """Render each message for its channel and send its parts in order; one result per part."""
    # Resolve every channel first so a wiring mistake sends nothing rather than half a reply.
    missing = sorted({str(m.channel) for m in messages if m.channel not in channels})
    if missing:
        configured = ", ".join(sorted(str(name) for name in channels)) or "none"
        raise LookupError(f"no channel configured for {', '.join(missing)} (have: {configured})")
    results: list[SendResult] = []
    for message in messages:
        channel = channels[message.channel]
        for part in render(message, sms_max_segments=sms_max_segments, sms_fold=sms_fold):
            results.append(await channel.send(part))
    return results
