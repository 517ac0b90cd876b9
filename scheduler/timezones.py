"""A learner's time zone: explicit, else from the phone number's country, else the cohort's."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as phone_timezones

# phonenumbers' time zone map is keyed by prefixes of up to this many digits (country code
# included), so numbers sharing these digits and their length get the same answer: the cache
# key. Parsing a number costs ~50 µs; 100,000 learners must not pay that on every plan.
_PREFIX_DIGITS = 9
_UNKNOWN = phone_timezones.UNKNOWN_TIMEZONE


class TimeZoneError(ValueError):
    """Not an IANA time zone name."""


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name such as `Africa/Nairobi`; TimeZoneError otherwise."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        raise TimeZoneError(f"{name!r} is not an IANA time zone name (e.g. Africa/Nairobi)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimeZoneError(
            f"{name!r} is not an IANA time zone name (e.g. Africa/Nairobi)"
        ) from exc


def is_valid_zone(name: str) -> bool:
    """Whether `name` is a known IANA time zone."""
    try:
        zone(name)
    except TimeZoneError:
        return False
    return True


def known_zones() -> frozenset[str]:
    """Every IANA zone name this machine knows (for completion and help)."""
    return frozenset(available_timezones())


def zones_for_phone(phone: str) -> tuple[str, ...]:
    """The IANA zones phonenumbers gives for an E.164 number; () if unknown or unparsable."""
    digits = phone[1:] if phone.startswith("+") else phone
    if not digits.isdigit():
        return ()
    key = (digits[:_PREFIX_DIGITS], len(digits))
    found = _PREFIX_CACHE.get(key)
    if found is None:
        found = _lookup(digits)
        if len(_PREFIX_CACHE) < _PREFIX_CACHE_SIZE:
            _PREFIX_CACHE[key] = found
    return found


# The first number seen with a prefix and length answers for all of them (see _PREFIX_DIGITS).
_PREFIX_CACHE: dict[tuple[str, int], tuple[str, ...]] = {}
_PREFIX_CACHE_SIZE = 65536


def _lookup(digits: str) -> tuple[str, ...]:
    try:
        number = phonenumbers.parse(f"+{digits}", None)
    except phonenumbers.NumberParseException:
        return ()
    zones = phone_timezones.time_zones_for_number(number)
    return tuple(z for z in zones if z != _UNKNOWN and is_valid_zone(z))


def learner_zone(
    explicit: str | None, phone: str | None, cohort_zone: str, *, channel: str | None = None
) -> str:
    """The zone deciding a learner's local send time.

    Explicit if valid; else from the phone number's country (several zones: the cohort's if it
    is among them, else the first); else the cohort's. Telegram/sandbox addresses are not phone
    numbers, so only SMS/WhatsApp addresses (or a `channel` of None) are looked up.
    """
    if explicit and is_valid_zone(explicit):
        return explicit
    if phone and channel in (None, "sms", "whatsapp"):
        zones = zones_for_phone(phone)
        if zones:
            return cohort_zone if cohort_zone in zones else zones[0]
    return cohort_zone
