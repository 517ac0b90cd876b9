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


async def test_least_recently_active_address_is_forgotten_first() -> None:
    channel = SandboxChannel(max_addresses=2)

    await channel.send(message("alice-001", "a"))
    await channel.send(message("bob-00001", "b"))
    await channel.send(message("alice-001", "a again"))  # alice is now the most recent
    await channel.send(message("carol-001", "c"))

    assert channel.addresses() == ["alice-001", "carol-001"]
    assert channel.transcript("bob-00001") == []


async def test_cursor_never_goes_back_when_a_forgotten_address_returns() -> None:
    channel = SandboxChannel(max_addresses=1)
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
