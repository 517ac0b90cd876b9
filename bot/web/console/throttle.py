"""Sign-in attempts limited per account and per client address, over a sliding window.

Kept in the process's memory: one `learnbot serve` process counts its own attempts. With
several processes behind a load balancer each counts separately, so an attacker gets at most
that many times the limit; the argon2 cost per attempt stays the main brake either way.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
MAX_KEYS = 10_000  # past this, the keys failed longest ago are forgotten first


class SignInThrottle:
    """Counts failed sign-ins; refuses a key once it has `max_failures` within the window."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        found = self._failures.get(key)
        if found is None:
            return deque()
        horizon = self._clock() - self.window
        while found and found[0] <= horizon:
            found.popleft()
        if not found:
            del self._failures[key]
        return found

    def blocked(self, *keys: str) -> bool:
        """Whether any of these keys (an account, an address) has used up its attempts."""
        return any(len(self._recent(key)) >= self.max_failures for key in keys)

    def failed(self, *keys: str) -> None:
        """Count one failed attempt against each key."""
        now = self._clock()
        for key in keys:
            found = self._failures.setdefault(key, deque())
            found.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, account_key: str, address_key: str | None = None) -> None:
        """Its owner got in: forget the account's failures, and this attempt of the address.

        Attempts are counted before the password is checked (`failed`), so that requests
        sent in parallel cannot all pass `blocked` first; a success takes its own one back.
        """
        self._failures.pop(account_key, None)
        found = self._failures.get(address_key) if address_key is not None else None
        if found:
            found.pop()
