"""In-process channel for the demo, the /sandbox chat simulator and tests."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from bot.domain import ChannelName, RenderedMessage, SendResult

DEFAULT_MAX_PER_ADDRESS = 200
DEFAULT_MAX_ADDRESSES = 1000
# A conversation quiet this long may make room for a new one when the sandbox is full.
DEFAULT_IDLE_SECONDS = 30 * 60.0


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
    __slots__ = ("active_at", "changed", "entries")

    def __init__(self, max_entries: int, now: float) -> None:
        self.entries: deque[SandboxEntry] = deque(maxlen=max_entries)
        self.changed = asyncio.Event()
        self.active_at = now


class SandboxChannel:
    """Keeps a bounded transcript per address and wakes long-polling readers.

    At most `max_addresses` conversations are kept. When they are all taken, a new one
    replaces only a conversation quiet for `idle_seconds`; otherwise it is refused
    (`start_conversation` is False): a flood of new addresses never pushes out a live one.
    """

    def __init__(
        self,
        *,
        max_per_address: int = DEFAULT_MAX_PER_ADDRESS,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_per_address < 1 or max_addresses < 1:
            raise ValueError("max_per_address and max_addresses must be at least 1")
        self._max_per_address = max_per_address
        self._max_addresses = max_addresses
        self._idle_seconds = idle_seconds
        self._clock = clock
        # Least recently active first, so a public /sandbox forgets idle visitors first.
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()
        # Set (and replaced) whenever a conversation starts: wakes pollers of new addresses.
        self._started = asyncio.Event()
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

    def knows(self, address: str) -> bool:
        """Whether this address has a conversation now."""
        return address in self._conversations

    def start_conversation(self, address: str) -> bool:
        """Make sure `address` has a conversation; False when the sandbox is full of live ones."""
        return self._conversation(address, touch=True) is not None

    async def send(self, message: RenderedMessage) -> SendResult:
        """Append a bot message to its address's transcript and wake its readers.

        A message to an address that has no conversation, while the sandbox is full, is
        dropped (nobody is reading it): it still gets an id, like a sent message.
        """
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
            conversation = self._conversations.get(address)
            # An address with no conversation yet waits for one to start (its first message):
            # a poll never makes one, so polling fresh addresses cannot fill the sandbox.
            changed = self._started if conversation is None else conversation.changed
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
        if conversation is None:
            return entry  # the sandbox is full of live conversations: nobody reads this one
        conversation.entries.append(entry)
        # Replace the event rather than clear it: every current waiter wakes exactly once.
        conversation.changed.set()
        conversation.changed = asyncio.Event()
        return entry

    def _conversation(self, address: str, *, touch: bool) -> _Conversation | None:
        now = self._clock()
        conversation = self._conversations.get(address)
        if conversation is not None:
            if touch:
                conversation.active_at = now
                self._conversations.move_to_end(address)
            return conversation
        if len(self._conversations) >= self._max_addresses:
            oldest = next(iter(self._conversations.values()))
            if now - oldest.active_at < self._idle_seconds:
                return None  # every conversation is live: refuse, never evict one
            self._conversations.popitem(last=False)
        conversation = _Conversation(self._max_per_address, now)
        self._conversations[address] = conversation
        self._started.set()
        self._started = asyncio.Event()
        return conversation
