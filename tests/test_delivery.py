"""Direct delivery: render each message for its channel and send the parts in order."""

from __future__ import annotations

import pytest

from bot.channels.base import SendError, SendErrorKind
from bot.delivery import deliver
from bot.domain import Button, ChannelName, Image, OutboundMessage, RenderedMessage, SendResult
from bot.lessons.sms import segment_count


class RecordingChannel:
    """A channel that keeps what it was asked to send; fails on a chosen text."""

    def __init__(self, name: ChannelName, fail_on: str | None = None) -> None:
        self._name = name
        self.fail_on = fail_on
        self.sent: list[RenderedMessage] = []

    @property
    def name(self) -> ChannelName:
        return self._name

    async def send(self, message: RenderedMessage) -> SendResult:
        if self.fail_on is not None and self.fail_on in message.text:
            raise SendError(SendErrorKind.RETRYABLE, "provider busy", retry_after=1.0)
        self.sent.append(message)
        return SendResult(
            provider_message_id=f"{self._name}-{len(self.sent)}", segments=message.segments
        )


def outbound(channel: ChannelName, text: str, **extra: object) -> OutboundMessage:
    return OutboundMessage(channel=channel, address="learner-1", text=text, locale="en", **extra)  # type: ignore[arg-type]


async def test_messages_are_rendered_and_sent_in_order_on_their_channel() -> None:
    telegram = RecordingChannel(ChannelName.TELEGRAM)
    buttons = (Button("Yes", "q1:1"), Button("No", "q1:2"))
    image = Image("https://example.org/map.png", "A map of the district")

    results = await deliver(
        [
            outbound(ChannelName.TELEGRAM, "Lesson 1", image=image),
            outbound(ChannelName.TELEGRAM, "Ready?", buttons=buttons),
        ],
        {ChannelName.TELEGRAM: telegram},
    )

    assert [r.provider_message_id for r in results] == ["telegram-1", "telegram-2"]
    assert [(m.text, m.image_url, m.buttons) for m in telegram.sent] == [
        ("Lesson 1", "https://example.org/map.png", ()),
        ("Ready?", None, buttons),
    ]


async def test_each_message_goes_through_its_own_channel() -> None:
    telegram, sms = RecordingChannel(ChannelName.TELEGRAM), RecordingChannel(ChannelName.SMS)

    await deliver(
        [outbound(ChannelName.SMS, "by text"), outbound(ChannelName.TELEGRAM, "by chat")],
        {ChannelName.TELEGRAM: telegram, ChannelName.SMS: sms},
    )

    assert [m.text for m in sms.sent] == ["by text"]
    assert [m.text for m in telegram.sent] == ["by chat"]


async def test_sms_buttons_become_numbered_lines_and_images_their_alt_text() -> None:
    sms = RecordingChannel(ChannelName.SMS)
    message = outbound(
        ChannelName.SMS,
        "Which is personal data?",
        buttons=(Button("A phone number", "a:1"), Button("A road name", "a:2")),
    )

    await deliver([message], {ChannelName.SMS: sms})

    (sent,) = sms.sent
    assert sent.buttons == ()
    assert "1) A phone number" in sent.text and "2) A road name" in sent.text
    assert sent.encoding == "GSM-7"


async def test_long_sms_is_split_within_the_segment_limit() -> None:
    sms = RecordingChannel(ChannelName.SMS)
    sentence = "Good public services start from what their users need. "
    text = sentence * 20  # about 1,100 GSM-7 characters: more than 3 segments

    results = await deliver(
        [outbound(ChannelName.SMS, text.strip())], {ChannelName.SMS: sms}, sms_max_segments=2
    )

    assert len(sms.sent) > 1
    assert len(results) == len(sms.sent)
    for part in sms.sent:
        assert part.segments <= 2
        assert part.segments == segment_count(part.text)
    assert " ".join(p.text for p in sms.sent).split() == text.split()


async def test_more_segments_allowed_means_fewer_parts() -> None:
    few, many = RecordingChannel(ChannelName.SMS), RecordingChannel(ChannelName.SMS)
    text = ("Data helps decide. " * 40).strip()

    await deliver([outbound(ChannelName.SMS, text)], {ChannelName.SMS: few}, sms_max_segments=1)
    await deliver([outbound(ChannelName.SMS, text)], {ChannelName.SMS: many}, sms_max_segments=4)

    assert len(many.sent) < len(few.sent)
    assert all(part.segments == 1 for part in few.sent)


async def test_a_missing_channel_sends_nothing_at_all() -> None:
    telegram = RecordingChannel(ChannelName.TELEGRAM)

    with pytest.raises(LookupError, match="no channel configured for sms"):
        await deliver(
            [outbound(ChannelName.TELEGRAM, "first"), outbound(ChannelName.SMS, "second")],
            {ChannelName.TELEGRAM: telegram},
        )

    assert telegram.sent == []


async def test_a_send_error_stops_delivery_and_reaches_the_caller() -> None:
    telegram = RecordingChannel(ChannelName.TELEGRAM, fail_on="second")

    with pytest.raises(SendError) as caught:
        await deliver(
            [outbound(ChannelName.TELEGRAM, t) for t in ("first", "second", "third")],
            {ChannelName.TELEGRAM: telegram},
        )

    assert caught.value.kind is SendErrorKind.RETRYABLE
    assert [m.text for m in telegram.sent] == ["first"]


async def test_sms_sends_the_folded_text_it_counts() -> None:
    folded, kept = RecordingChannel(ChannelName.SMS), RecordingChannel(ChannelName.SMS)
    message = OutboundMessage(
        channel=ChannelName.SMS,
        address="learner-1",
        text="Recolha apenas a informação necessária e guarde-a em segurança.",
        locale="pt",
    )

    await deliver([message], {ChannelName.SMS: folded})
    await deliver([message], {ChannelName.SMS: kept}, sms_fold=frozenset({"fr"}))

    assert [(m.text, m.encoding) for m in folded.sent] == [
        ("Recolha apenas a informacao necessaria e guarde-a em seguranca.", "GSM-7")
    ]
    assert [(m.text, m.encoding) for m in kept.sent] == [(message.text, "UCS-2")]
