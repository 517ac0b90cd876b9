"""Keyed pseudonyms: stable under one key, different under another, and not the value."""

from __future__ import annotations

import hashlib
import hmac

from bot.analytics.pseudonym import pseudonym

KEY = "a-secret-key-of-some-length"


def test_pseudonym_is_stable_and_short_hex() -> None:
    first = pseudonym(KEY, "learner-key-1")

    assert first == pseudonym(KEY, "learner-key-1")
    assert len(first) == 16
    assert int(first, 16) >= 0


def test_pseudonym_is_an_hmac_sha256_of_the_value() -> None:
    expected = hmac.new(KEY.encode(), b"+254700000001", hashlib.sha256).hexdigest()

    assert pseudonym(KEY, "+254700000001") == expected[:16]


def test_different_values_and_keys_give_different_pseudonyms() -> None:
    assert pseudonym(KEY, "learner-key-1") != pseudonym(KEY, "learner-key-2")
    assert pseudonym(KEY, "learner-key-1") != pseudonym("another-secret-key", "learner-key-1")
