"""Time zones for the dialogue: a country's clocks, choice labels, and the learner's reply.

People recognise their clock faster than a zone name, so each choice is a city with its local
time now. Zones of a country that keep the same time all year are one choice, shown by the
city most phone numbers of that clock belong to (New York, not Detroit; Sao Paulo, not
Araguaina). Replies may be a choice, a city (in any shipped language), a country with one
clock, or a UTC offset ("+3", "UTC+3", "GMT-5", "+05:30").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from babel.core import get_global
from babel.dates import get_timezone_location

from bot.dialogue.keywords import normalize
from bot.dialogue.profile import parse_country
from bot.i18n import SHIPPED_LOCALES, format_time, parse_locale
from scheduler.timezones import is_valid_zone, known_zones, zones_for_phone

ZONE_PAYLOAD = "tz:"  # a choice button's payload: "tz:Africa/Nairobi"
_HOUR = timedelta(hours=1)
# UTC offsets in use run from -12:00 to +14:00, in quarter hours (Nepal +05:45).
_LOWEST, _HIGHEST = timedelta(hours=-12), timedelta(hours=14)
_OFFSET = re.compile(r"^(?:(utc|gmt))?([+-])?(\d{1,2})(?:[:.h]?(\d{2}))?$")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹−", "01234567890123456789-")
_ETC = re.compile(r"^Etc/GMT([+-]\d{1,2})$")


def canonical(name: str) -> str:
    """The current IANA name of a zone (phonenumbers still says Asia/Calcutta)."""
    aliases: Mapping[str, str] = get_global("zone_aliases")
    return aliases.get(name, name)


@cache
def _popularity() -> Counter[str]:
    # How many phone-number prefixes each zone has: a fair proxy for how many people use it.
    from phonenumbers.tzdata import TIMEZONE_DATA

    counts: Counter[str] = Counter()
    for zones in TIMEZONE_DATA.values():
        counts.update(canonical(z) for z in zones)
    return counts


@cache
def _windows_zones() -> frozenset[str]:
    # CLDR's Windows mapping names one well-known zone per clock: a tie-breaker.
    mapping: Mapping[str, str] = get_global("windows_zone_mapping")
    return frozenset(canonical(z) for z in mapping.values())


@cache
def _samples() -> tuple[datetime, ...]:
    # Weekly instants over a year: two zones with equal offsets at all of them keep one clock.
    start = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC)
    return tuple(start + timedelta(weeks=n) for n in range(53))


@lru_cache(maxsize=1024)
def _clock(name: str) -> tuple[timedelta | None, ...]:
    tz = ZoneInfo(name)
    return tuple(instant.astimezone(tz).utcoffset() for instant in _samples())


def same_clock(a: str, b: str) -> bool:
    """Whether two zones show the same time all year (Africa/Nairobi and Africa/Kampala)."""
    return a == b or _clock(canonical(a)) == _clock(canonical(b))


def one_per_clock(names: Iterable[str]) -> tuple[str, ...]:
    """One zone per distinct clock, west to east; each clock shown by its best-known zone."""
    groups: dict[tuple[timedelta | None, ...], list[str]] = {}
    for name in dict.fromkeys(canonical(n) for n in names):
        if is_valid_zone(name):
            groups.setdefault(_clock(name), []).append(name)
    popular, windows = _popularity(), _windows_zones()
    best = [
        min(members, key=lambda z: (-popular[z], z not in windows, z))
        for members in groups.values()
    ]

    def west_to_east(name: str) -> tuple[float, str]:
        offsets = [o.total_seconds() for o in _clock(name) if o is not None]
        return (sum(offsets) / max(len(offsets), 1), name)

    return tuple(sorted(best, key=west_to_east))


@cache
def country_zones(country: str) -> tuple[str, ...]:
    """The clocks of a country (ISO 3166 alpha-2), one zone each, west to east."""
    territory: Mapping[str, list[str]] = get_global("territory_zones")
    # CLDR files the Etc/GMT±N zones under ZZ (unknown region): they are nobody's country.
    names = territory.get(country.upper(), ())
    return one_per_clock(n for n in names if not n.startswith("Etc/"))


def phone_zone_choices(phone: str) -> tuple[str, ...]:
    """The clocks a phone number may be in: its own zone if it has one, else its country's."""
    zones = zones_for_phone(phone)
    if len(zones) <= 1:
        return tuple(canonical(z) for z in zones)
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        region = None
    found = country_zones(region) if region and region != "001" else ()
    return found or one_per_clock(zones)


def zone_label(name: str, locale: str) -> str:
    """What a learner calls a zone: its city in their language, or "UTC+3"."""
    if name in ("UTC", "Etc/UTC", "Etc/GMT"):
        return "UTC"
    fixed = _ETC.match(name)
    if fixed:
        # Etc/GMT-3 is UTC+3: the POSIX sign is inverted.
        return f"UTC{-int(fixed.group(1)):+d}"
    try:
        city = get_timezone_location(name, locale=parse_locale(locale), return_city=True)
    except (LookupError, ValueError):
        city = ""
    return str(city) or name.rsplit("/", 1)[-1].replace("_", " ")


def local_time(name: str, now: datetime, locale: str) -> str:
    """The time it is now in a zone, as the locale writes a short time ("9:15 AM", "09:15")."""
    return format_time(now, locale, name)


def parse_offset(text: str) -> timedelta | None:
    """A UTC offset written "+3", "UTC+3", "GMT-5", "+05:30", "UTC" (None otherwise).

    A bare number is not an offset: it answers the numbered choices.
    """
    cleaned = re.sub(r"\s+", "", text.translate(_DIGITS).casefold())
    if cleaned in ("utc", "gmt"):
        return timedelta(0)
    match = _OFFSET.match(cleaned)
    if match is None or not (match.group(1) or match.group(2)):
        return None
    minutes = int(match.group(4) or 0)
    if minutes not in (0, 15, 30, 45):
        return None
    offset = timedelta(hours=int(match.group(3)), minutes=minutes)
    offset = -offset if match.group(2) == "-" else offset
    return offset if _LOWEST <= offset <= _HIGHEST else None


def zone_for_offset(offset: timedelta, offered: Sequence[str], now: datetime) -> str | None:
    """A zone at this offset now: an offered one, else a fixed UTC±N, else the best-known."""
    for name in offered:
        if now.astimezone(ZoneInfo(name)).utcoffset() == offset:
            return name
    if offset % _HOUR == timedelta(0):
        # Whole hours: exactly what the learner said, with no daylight-saving guess.
        hours = int(offset / _HOUR)
        return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
    popular = _popularity()
    matching = [
        name for name in _city_zones() if now.astimezone(ZoneInfo(name)).utcoffset() == offset
    ]
    return min(matching, key=lambda z: (-popular[z], z)) if matching else None


@cache
def _city_zones() -> tuple[str, ...]:
    # Zones named after a place (not Etc/..., EST5EDT, aliases), best-known first.
    popular = _popularity()
    names = {
        canonical(n)
        for n in known_zones()
        if "/" in n and not n.startswith(("Etc/", "SystemV/", "posix/", "right/"))
    }
    return tuple(sorted((n for n in names if is_valid_zone(n)), key=lambda z: (-popular[z], z)))


@cache
def _city_index() -> dict[str, str]:
    # Normalised city name -> zone, from the IANA name and Babel's city in every shipped
    # locale ("sao paulo", "le caire", "القاهرة"); the best-known zone wins a shared name.
    index: dict[str, str] = {}
    for name in _city_zones():
        cities = {name.rsplit("/", 1)[-1].replace("_", " ")}
        for locale in SHIPPED_LOCALES:
            try:
                cities.add(str(get_timezone_location(name, locale=locale, return_city=True)))
            except (LookupError, ValueError):
                continue
        for city in cities:
            key = normalize(city)
            if key:
                index.setdefault(key, name)
    return index


def find_zone(text: str, offered: Sequence[str], now: datetime) -> str | None:
    """The zone a typed reply names: a UTC offset, a city, or a country with one clock."""
    offset = parse_offset(text)
    if offset is not None:
        return zone_for_offset(offset, offered, now)
    word = normalize(text)
    if not word or word.isdigit():
        return None
    found = _city_index().get(word)
    if found is not None:
        return found
    country = parse_country(text)
    if country is not None:
        clocks = country_zones(country)
        if len(clocks) == 1:
            return clocks[0]
    return None


def zone_from_payload(payload: str) -> str | None:
    """The zone of a choice button's payload, if it is one and the zone exists."""
    if not payload.startswith(ZONE_PAYLOAD):
        return None
    name = payload.removeprefix(ZONE_PAYLOAD)
    return name if is_valid_zone(name) else None
