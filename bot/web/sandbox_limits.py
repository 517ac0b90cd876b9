"""Per-client token buckets for the public /sandbox, kept in memory (one demo process)."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

DEFAULT_MAX_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Rate:
    """`burst` requests at once, then `per_second` on average."""

    burst: int
    per_second: float


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """How much one client (an IP address, an IPv6 /64) and one sandbox address may ask."""

    # Every request, polls included: a page polls once per reply and every 25 s when idle,
    # and a workshop room may share one address behind its router.
    per_client: Rate = field(default_factory=lambda: Rate(burst=120, per_second=10.0))
    # Messages of one conversation: faster than anyone types or taps.
    messages_per_address: Rate = field(default_factory=lambda: Rate(burst=10, per_second=1.0))
    # New conversations (addresses the sandbox does not know) from one client: each makes a
    # learner in the database, so a flood of fresh addresses stops here.
    new_conversations_per_client: Rate = field(
        default_factory=lambda: Rate(burst=20, per_second=1 / 30)
    )


class TokenBuckets:
    """One token bucket per key; the least recently used keys are forgotten past `max_keys`."""

    def __init__(
        self,
        rate: Rate,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate.burst < 1 or not rate.per_second > 0:
            raise ValueError("a rate needs a burst of at least 1 and a positive per_second")
        self._rate = rate
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, key: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is there."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(self._rate.burst), now))
        tokens = min(float(self._rate.burst), tokens + (now - at) * self._rate.per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self._rate.per_second
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            # A forgotten key starts full again: only keys unused the longest are dropped.
            self._buckets.popitem(last=False)
        return wait


def client_key(request: Request) -> str:
    """The client's IP from the ASGI scope (uvicorn puts a trusted proxy's client there).

    IPv6 clients are counted by /64: one host usually has a whole /64 to pick from.
    """
    host = request.client.host if request.client is not None else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
