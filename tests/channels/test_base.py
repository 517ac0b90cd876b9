"""The Channel protocol and its typed error."""

from __future__ import annotations

from bot.channels.base import Channel, SendError, SendErrorKind
from bot.channels.sandbox import SandboxChannel
from bot.domain import ChannelName


def test_send_error_carries_what_the_dispatcher_needs() -> None:
    error = SendError(SendErrorKind.RETRYABLE, "rate limited", code="429", retry_after=2.5)

    assert (error.kind, error.code, error.detail, error.retry_after) == (
        SendErrorKind.RETRYABLE,
        "429",
        "rate limited",
        2.5,
    )
    assert str(error) == "retryable: rate limited (code 429)"


def test_send_error_without_code_says_only_kind_and_detail() -> None:
    error = SendError(SendErrorKind.OPTED_OUT, "the learner blocked the bot")

    assert error.code is None and error.retry_after is None
    assert str(error) == "opted_out: the learner blocked the bot"


def test_sandbox_channel_is_a_channel() -> None:
    channel: Channel = SandboxChannel()

    assert isinstance(channel, Channel)
    assert channel.name is ChannelName.SANDBOX
