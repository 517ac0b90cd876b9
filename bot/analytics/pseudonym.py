"""Keyed pseudonyms (HMAC-SHA256): stable per secret key, unlinkable without it."""

from __future__ import annotations

import hashlib
import hmac

PSEUDONYM_LENGTH = 16  # hex digits: 64 bits, no collisions at any realistic learner count


def pseudonym(secret_key: str, value: str) -> str:
    """The pseudonym of `value` under `secret_key`: 16 lowercase hex digits."""
    digest = hmac.new(secret_key.encode("utf-8"), value.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:PSEUDONYM_LENGTH]
