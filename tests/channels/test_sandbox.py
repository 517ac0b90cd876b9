"""The in-process sandbox channel: transcripts, caps and long-polling."""

from __future__ import annotations

import asyncio

import pytest

from bot.channels.sandbox import Preview, SandboxChannel
from bot.domain import Button, ChannelName, RenderedMessage


def message(address: str, text: str) -> RenderedMessage:
    return RenderedMessage(channel=ChannelName.SANDBOX, address=address, text=text)


async def test_send_appends_to_the_address_transcript_with_sequential_ids() -> None:
    channel = SandboxChannel()

    first = await channel.send(message("alice-001", "Hello"))
    second = await channel.send(message("bob-00001", "Hi Bob"))
    third = await channel.send(message("alice-001", "Lesson 1"))

    assert [r.provider_message_id for r in (first, second, third)] == ["sbx-1", "sbx-2", "sbx-3"]
    assert [e.message.text for e in channel.transcript("alice-001")] == ["Hello", "Lesson 1"]
    assert [e.seq for e in channel.transcript("alice-001", after=1)] == [3]
    assert channel.transcript("nobody-01") == []
    assert channel.cursor == 3


async def test_transcript_keeps_only_the_last_messages_of_an_address() -> None:
    channel = SandboxChannel(max_per_address=3)

    for number in range(1, 6):
        await channel.send(message("alice-001", f"message {number}"))

    assert [e.message.text for e in channel.transcript("alice-001")] == [
        "message 3",
        "message 4",
        "message 5",
    ]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_when_full_the_conversation_idle_longest_makes_room() -> None:
    clock = Clock()
    channel = SandboxChannel(max_addresses=2, idle_seconds=60, clock=clock)

    await channel.send(message("alice-001", "a"))
    await channel.send(message("bob-00001", "b"))
    clock.now += 30
    await channel.send(message("alice-001", "a again"))  # alice is now the most recent
    clock.now += 31  # bob has been quiet for 61 s, alice for 31 s
    await channel.send(message("carol-001", "c"))

    assert channel.addresses() == ["alice-001", "carol-001"]
    assert channel.transcript("bob-00001") == []


async def test_when_full_of_live_conversations_a_new_one_is_refused_not_evicting() -> None:
    clock = Clock()
    channel = SandboxChannel(max_addresses=2, idle_seconds=60, clock=clock)
    await channel.send(message("alice-001", "a"))
    await channel.send(message("bob-00001", "b"))
    clock.now += 59

    started = channel.start_conversation("carol-001")
    result = await channel.send(message("dave-0001", "to nobody"))

    assert started is False
    assert result.provider_message_id  # dropped, but answered like a send
    assert channel.addresses() == ["alice-001", "bob-00001"]
    assert [e.message.text for e in channel.transcript("alice-001")] == ["a"]
    assert channel.start_conversation("alice-001") is True  # a known one always goes on


async def test_polling_a_fresh_address_starts_no_conversation() -> None:
    channel = SandboxChannel(max_addresses=1)
    await channel.send(message("alice-001", "a"))

    for number in range(50):
        assert await channel.wait_for(f"poller-{number:04}", 0, timeout=0) == []

    assert channel.addresses() == ["alice-001"]


async def test_a_poll_before_the_first_message_wakes_when_it_comes() -> None:
    channel = SandboxChannel()

    async def first_message() -> None:
        await asyncio.sleep(0.02)
        await channel.send(message("alice-001", "Welcome"))

    entries, _ = await asyncio.gather(channel.wait_for("alice-001", 0, 5), first_message())

    assert [e.message.text for e in entries] == ["Welcome"]


async def test_cursor_never_goes_back_when_a_forgotten_address_returns() -> None:
    channel = SandboxChannel(max_addresses=1, idle_seconds=0)
    await channel.send(message("alice-001", "a"))
    await channel.send(message("bob-00001", "b"))  # forgets alice

    await channel.send(message("alice-001", "back"))

    assert [e.seq for e in channel.transcript("alice-001", after=1)] == [3]


def test_caps_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SandboxChannel(max_per_address=0)


async def test_learner_messages_and_previews_are_recorded() -> None:
    channel = SandboxChannel()
    echo = channel.record_inbound("alice-001", "JOIN DEMO")
    result = await channel.send(message("alice-001", "Welcome"))
    sms = RenderedMessage(ChannelName.SMS, "alice-001", "Welcome", encoding="GSM-7")
    preview = Preview(image_alt=None, parts={ChannelName.SMS: (sms,)})

    attached = channel.attach_preview("alice-001", result.provider_message_id or "", preview)

    entries = channel.transcript("alice-001")
    assert attached
    assert [(e.from_learner, e.message.text) for e in entries] == [
        (True, "JOIN DEMO"),
        (False, "Welcome"),
    ]
    assert entries[0].seq == echo.seq
    assert entries[1].preview == preview
    assert not channel.attach_preview("alice-001", "sbx-999", preview)
    assert not channel.attach_preview("nobody-01", "sbx-2", preview)


async def test_wait_for_returns_existing_messages_at_once() -> None:
    channel = SandboxChannel()
    await channel.send(message("alice-001", "already there"))

    entries = await asyncio.wait_for(channel.wait_for("alice-001", after=0, timeout=10), 1)

    assert [e.message.text for e in entries] == ["already there"]


async def test_wait_for_wakes_when_a_message_is_sent() -> None:
    channel = SandboxChannel()
    waiter = asyncio.create_task(channel.wait_for("alice-001", after=0, timeout=10))
    await asyncio.sleep(0.01)
    assert not waiter.done()

    await channel.send(message("bob-00001", "not for alice"))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await channel.send(message("alice-001", "pushed by a trainer"))

    entries = await asyncio.wait_for(waiter, 1)
    assert [e.message.text for e in entries] == ["pushed by a trainer"]


async def test_wait_for_returns_nothing_after_the_timeout() -> None:
    channel = SandboxChannel()
    await channel.send(message("alice-001", "old"))

    entries = await channel.wait_for("alice-001", after=1, timeout=0.05)

    assert entries == []


async def test_buttons_are_kept_as_sent() -> None:
    channel = SandboxChannel()
    buttons = (Button("Yes", "q1:1"), Button("No", "q1:2"))

    await channel.send(RenderedMessage(ChannelName.SANDBOX, "alice-001", "Sure?", buttons=buttons))

    assert channel.transcript("alice-001")[0].message.buttons == buttons
