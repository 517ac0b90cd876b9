"""In-process channel for the demo, the /sandbox chat simulator and tests."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bot.domain import ChannelName, RenderedMessage, SendResult

DEFAULT_MAX_PER_ADDRESS = 200
DEFAULT_MAX_ADDRESSES = 1000


@dataclass(frozen=True, slots=True)
class Preview:
    """How the outbound message behind an entry renders elsewhere, for the simulator."""

    image_alt: str | None = None
    parts: Mapping[ChannelName, tuple[RenderedMessage, ...]] = field(default_factory=dict)
    first: bool = True  # False on the later parts of the same message: the preview is shown once


@dataclass(frozen=True, slots=True)
class SandboxEntry:
    """One line of a sandbox conversation, numbered by a cursor shared by all addresses."""

    seq: int
    message: RenderedMessage
    from_learner: bool = False  # the learner's own message, echoed so a reload shows it
    preview: Preview | None = None

    @property
    def provider_message_id(self) -> str:
        """The id `send` returned for this entry."""
        return f"sbx-{self.seq}"


class _Conversation:
    __slots__ = ("changed", "entries")

    def __init__(self, max_entries: int) -> None:
        self.entries: deque[SandboxEntry] = deque(maxlen=max_entries)
        self.changed = asyncio.Event()


class SandboxChannel:
    """Keeps a bounded transcript per address and wakes long-polling readers."""

    def __init__(
        self,
        *,
        max_per_address: int = DEFAULT_MAX_PER_ADDRESS,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
    ) -> None:
        if max_per_address < 1 or max_addresses < 1:
            raise ValueError("max_per_address and max_addresses must be at least 1")
        self._max_per_address = max_per_address
        self._max_addresses = max_addresses
        # Least recently active first, so a public /sandbox forgets idle visitors first.
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()
        # One cursor for all addresses: it never goes back, even if an address is forgotten
        # and comes back, so a browser's cursor stays valid.
        self._last_seq = 0

    @property
    def name(self) -> ChannelName:
        """Always `ChannelName.SANDBOX`."""
        return ChannelName.SANDBOX

    @property
    def cursor(self) -> int:
        """The seq of the newest entry of any address (0 before the first)."""
        return self._last_seq

    async def send(self, message: RenderedMessage) -> SendResult:
        """Append a bot message to its address's transcript and wake its readers."""
        entry = self._append(message, from_learner=False)
        return SendResult(provider_message_id=entry.provider_message_id, segments=1)

    def record_inbound(self, address: str, text: str) -> SandboxEntry:
        """Echo what the learner sent (as shown to them) into their transcript."""
        message = RenderedMessage(channel=ChannelName.SANDBOX, address=address, text=text)
        return self._append(message, from_learner=True)

    def attach_preview(self, address: str, provider_message_id: str, preview: Preview) -> bool:
        """Attach a preview to the entry `send` returned this id for; False if it is gone."""
        conversation = self._conversations.get(address)
        if conversation is None:
            return False
        for index, entry in enumerate(conversation.entries):
            if entry.provider_message_id == provider_message_id:
                conversation.entries[index] = replace(entry, preview=preview)
                return True
        return False

    def transcript(self, address: str, after: int = 0) -> list[SandboxEntry]:
        """Entries of one address with a seq greater than `after`, oldest first."""
        conversation = self._conversations.get(address)
        if conversation is None:
            return []
        return [entry for entry in conversation.entries if entry.seq > after]

    async def wait_for(self, address: str, after: int, timeout: float) -> list[SandboxEntry]:
        """Entries after `after`, waiting up to `timeout` seconds for one if there are none."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while True:
            entries = self.transcript(address, after)
            remaining = deadline - loop.time()
            if entries or remaining <= 0:
                return entries
            changed = self._conversation(address, touch=False).changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return self.transcript(address, after)

    def addresses(self) -> list[str]:
        """Addresses currently remembered, least recently active first."""
        return list(self._conversations)

    def _append(self, message: RenderedMessage, *, from_learner: bool) -> SandboxEntry:
        self._last_seq += 1
        entry = SandboxEntry(seq=self._last_seq, message=message, from_learner=from_learner)
        conversation = self._conversation(message.address, touch=True)
        conversation.entries.append(entry)
        # Replace the event rather than clear it: every current waiter wakes exactly once.
        conversation.changed.set()
        conversation.changed = asyncio.Event()
        return entry

    def _conversation(self, address: str, *, touch: bool) -> _Conversation:
        conversation = self._conversations.get(address)
        if conversation is None:
            conversation = _Conversation(self._max_per_address)
            self._conversations[address] = conversation
            while len(self._conversations) > self._max_addresses:
                self._conversations.popitem(last=False)
        elif touch:
            self._conversations.move_to_end(address)
        return conversation
