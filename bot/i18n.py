"""Babel at run time: UI catalogs, fallback chains, bidi isolation, locale-aware formatting.

Callers translate with literals so Babel's extractor finds them::

    tr = catalogs.translations(learner.locale)
    tr.gettext("Welcome!")
    tr.ngettext("%(num)d lesson left", "%(num)d lessons left", n) % {"num": n}
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import babel.dates
import babel.numbers
from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import Translations

SHIPPED_LOCALES: tuple[str, ...] = ("en", "fr", "es", "ar", "pt", "sw")
SOURCE_LOCALE = "en"
UI_DOMAIN = "messages"

FSI = "\u2068"  # FIRST STRONG ISOLATE
PDI = "\u2069"  # POP DIRECTIONAL ISOLATE

# The Plural-Forms of every shipped catalog, pinned here rather than read from Babel's CLDR
# data, which changes under us: Babel 2.19 (CLDR 46) gives French, Spanish and Portuguese a
# third form, "many", for exact millions ("1 000 000 de leçons"), and Portuguese the Brazilian
# rule (0 is singular). gettext uses each catalog's own header at run time, so what matters is
# that the header, the translations and this table agree. We keep the two forms every PO tool
# and translator of these languages expects (GNU gettext, Weblate, Transifex): our counts
# (lessons, learners, segments) never reach a million, and a third form would ask every
# translator for a string no learner sees. Portuguese keeps the European rule (n != 1), the
# norm in Lusophone Africa where our Portuguese learners are. Arabic: Babel's hand-kept table
# swaps "many" (n % 100 in 11..99) and "other" (100, 101, ...) (python-babel/babel#816); this is
# the CLDR order: zero, one, two, few, many, other. A locale not in this table (a course's own
# extra language) gets Babel's rule.
SHIPPED_PLURAL_FORMS: dict[str, tuple[int, str]] = {
    "en": (2, "(n != 1)"),
    "fr": (2, "(n > 1)"),
    "es": (2, "(n != 1)"),
    "pt": (2, "(n != 1)"),
    "sw": (2, "(n != 1)"),
    "ar": (
        6,
        "(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 "
        ": n%100>=11 && n%100<=99 ? 4 : 5)",
    ),
}

Number = int | float | Decimal


class UiTranslator(Protocol):
    """What UI code needs from a catalog; `babel.support.Translations` satisfies it."""

    def gettext(self, message: str, /) -> str:
        """Translate one message."""
        ...

    def ngettext(self, singular: str, plural: str, n: int, /) -> str:
        """Translate a message whose form depends on the count `n`."""
        ...


class CatalogError(ValueError):
    """A catalog file cannot be read; the message names the file and line."""


# Cached: the dialogue and the renderer ask for the same few locales on every message.
@lru_cache(maxsize=512)
def parse_locale(value: str) -> str:
    """Normalise "pt-BR" or "pt_br" to Babel's "pt_BR"; ValueError naming an unknown value."""
    cleaned = value.strip().replace("-", "_")
    if not cleaned:
        raise ValueError(f"unknown locale {value!r}: empty")
    try:
        return str(Locale.parse(cleaned))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown locale {value!r}") from exc


def _parent(locale: str) -> str | None:
    # CLDR parents first (pt_AO -> pt_PT, es_AR -> es_419, zh_Hant -> root), then truncation.
    parent: str | None = get_global("parent_exceptions").get(locale)
    if parent is None and "_" in locale:
        parent = locale.rsplit("_", 1)[0]
    return None if parent in (None, "root") else parent


def fallback_chain(
    requested: str | None, *, source: str = SOURCE_LOCALE, default: str | None = None
) -> list[str]:
    """Locales to try in order: requested, its parents, then `default`, then `source`."""
    chain: list[str] = []
    current = parse_locale(requested) if requested else None
    while current is not None:
        chain.append(current)
        current = _parent(current)
    if default:
        chain.append(parse_locale(default))
    chain.append(parse_locale(source))
    return list(dict.fromkeys(chain))


def best_locale(
    requested: str | None,
    available: tuple[str, ...] = SHIPPED_LOCALES,
    *,
    default: str = SOURCE_LOCALE,
) -> str:
    """The first of `available` on the requested locale's chain (Telegram's "pt-br" -> "pt")."""
    try:
        chain = fallback_chain(requested, source=default)
    except ValueError:
        chain = [parse_locale(default)]
    wanted = {parse_locale(locale): locale for locale in available}
    for locale in chain:
        if locale in wanted:
            return wanted[locale]
    return default


def plural_forms(locale: str) -> str:
    """The gettext Plural-Forms header for a locale: ours for a shipped language, else Babel's."""
    from babel.messages.plurals import get_plural

    language = Locale.parse(parse_locale(locale)).language
    if language in SHIPPED_PLURAL_FORMS:
        count, expr = SHIPPED_PLURAL_FORMS[language]
        return f"nplurals={count}; plural={expr};"
    return str(get_plural(parse_locale(locale)))


def apply_plural_forms(catalog: Catalog) -> None:
    """Give a new or updated catalog the Plural-Forms of `plural_forms` for its locale."""
    if catalog.locale is not None and catalog.locale.language in SHIPPED_PLURAL_FORMS:
        # Setting one header leaves the others alone; write_po writes it back out.
        catalog.mime_headers = [("Plural-Forms", plural_forms(str(catalog.locale)))]


class UiCatalogs:
    """The `messages` catalogs of one locales directory, loaded once per process and cached."""

    def __init__(
        self,
        locales_dir: Path,
        *,
        source: str = SOURCE_LOCALE,
        default: str | None = None,
        domain: str = UI_DOMAIN,
    ) -> None:
        self.locales_dir = Path(locales_dir)
        self.source = parse_locale(source)
        self.default = parse_locale(default) if default else None
        self.domain = domain
        self._mo_bytes: dict[str, bytes | None] = {}
        self._translations: dict[str, Translations] = {}

    def available_locales(self) -> tuple[str, ...]:
        """Locales with a `messages` catalog (.po or .mo), plus the source locale, sorted."""
        found = {self.source}
        if self.locales_dir.is_dir():
            for entry in self.locales_dir.iterdir():
                if self._catalog_paths(entry.name) is None:
                    continue
                try:
                    found.add(parse_locale(entry.name))
                except ValueError:
                    continue  # e.g. a "templates" directory: not a locale
        return tuple(sorted(found))

    def translations(self, locale: str) -> Translations:
        """Translations for `locale`, its fallback chain applied; missing catalogs are skipped."""
        key = parse_locale(locale)
        cached = self._translations.get(key)
        if cached is not None:
            return cached
        # Fresh objects per chain: add_fallback mutates, so links cannot be shared across chains.
        links = [
            Translations(BytesIO(data), domain=self.domain)
            for link in fallback_chain(key, source=self.source, default=self.default)
            if (data := self._load(link)) is not None
        ]
        head = links[0] if links else Translations(domain=self.domain)
        for link_translations in links[1:]:
            head.add_fallback(link_translations)
        self._translations[key] = head
        return head

    def reload(self) -> None:
        """Forget cached catalogs so the next lookup reads the files again."""
        self._mo_bytes.clear()
        self._translations.clear()

    def _catalog_paths(self, directory: str) -> tuple[Path, Path] | None:
        folder = self.locales_dir / directory / "LC_MESSAGES"
        po, mo = folder / f"{self.domain}.po", folder / f"{self.domain}.mo"
        return (po, mo) if po.is_file() or mo.is_file() else None

    def _directory_for(self, locale: str) -> str | None:
        # Directories may be named pt_BR, pt-BR or pt_br; match them by their parsed name.
        if self._catalog_paths(locale) is not None:
            return locale
        if not self.locales_dir.is_dir():
            return None
        for entry in sorted(self.locales_dir.iterdir()):
            try:
                if parse_locale(entry.name) == locale and self._catalog_paths(entry.name):
                    return entry.name
            except ValueError:
                continue
        return None

    def _load(self, locale: str) -> bytes | None:
        if locale not in self._mo_bytes:
            directory = self._directory_for(locale)
            paths = self._catalog_paths(directory) if directory else None
            self._mo_bytes[locale] = _compiled(*paths, locale, self.domain) if paths else None
        return self._mo_bytes[locale]


def _compiled(po: Path, mo: Path, locale: str, domain: str) -> bytes:
    """The .mo bytes for a catalog: the .mo file if it is at least as new as the .po."""
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime_ns >= po.stat().st_mtime_ns):
        data = mo.read_bytes()
        try:
            Translations(BytesIO(data), domain=domain)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CatalogError(f"{mo}: not a valid compiled catalog: {exc}") from exc
        return data
    try:
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=locale, domain=domain, abort_invalid=True)
    except PoFileError as exc:
        reason = str(exc).removesuffix(f" on {exc.lineno}")
        line = exc.lineno + 1  # Babel counts lines from 0
        raise CatalogError(f"{po}:{line}: {reason}: {exc.line.strip()!r}") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CatalogError(f"{po}: cannot read catalog: {exc}") from exc
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)  # fuzzy entries are never shown to learners
    return buffer.getvalue()


def language_name(locale: str) -> str:
    """The language's own name, capitalised for a menu ("Français", "العربية", "Kiswahili")."""
    parsed = Locale.parse(parse_locale(locale))
    name = parsed.get_display_name(parsed) or str(parsed)
    return name[:1].upper() + name[1:]


@lru_cache(maxsize=512)
def is_rtl(locale: str) -> bool:
    """Whether the locale is written right to left."""
    return Locale.parse(parse_locale(locale)).text_direction == "rtl"


def isolate(fragment: str, locale: str) -> str:
    """Wrap a left-to-right fragment (number, code, command, URL) in FSI/PDI for RTL locales."""
    return f"{FSI}{fragment}{PDI}" if fragment and is_rtl(locale) else fragment


_LATIN = "0-9A-Za-z\u00c0-\u024f"
_ALREADY_ISOLATED = f"{FSI}[^{PDI}]*{PDI}"
_URL = rf"(?:https?://|www\.)[^\s{FSI}{PDI}]*[^\s{FSI}{PDI}.,;:!?؟،)\]}}'\"»]"
# A slash starts a token only before a letter (/start), so Babel's "05‏/03‏/2024" keeps its slashes.
_WORD = rf"(?:/[A-Za-z]|[#@+]?[{_LATIN}])(?:[{_LATIN}_.,:/@+%'\-]*[{_LATIN}%])?"
_LTR_RUNS = re.compile(rf"({_ALREADY_ISOLATED})|{_URL}|{_WORD}(?:[ \t]+{_WORD})*")


def isolate_ltr_runs(text: str, locale: str) -> str:
    """Wrap each run of Latin words, digits, commands and URLs in FSI/PDI when `locale` is RTL."""
    if not is_rtl(locale):
        return text

    def wrap(match: re.Match[str]) -> str:
        return match.group(0) if match.group(1) else f"{FSI}{match.group(0)}{PDI}"

    return _LTR_RUNS.sub(wrap, text)


def _zone(time_zone: str | None) -> tzinfo:
    if not time_zone:
        return UTC
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {time_zone!r}") from exc


def _in_zone(dt: datetime, time_zone: str | None) -> datetime:
    # The store hands back naive datetimes from SQLite; they are UTC.
    aware = dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    return aware.astimezone(_zone(time_zone))


def format_datetime(
    dt: datetime, locale: str, time_zone: str | None, format: str = "medium"
) -> str:
    """Date and time in the learner's locale and zone (naive datetimes are UTC)."""
    local = _in_zone(dt, time_zone)
    return babel.dates.format_datetime(
        local, format, tzinfo=local.tzinfo, locale=parse_locale(locale)
    )


def format_date(
    value: date | datetime, locale: str, time_zone: str | None = None, format: str = "medium"
) -> str:
    """A date in the learner's locale; a datetime is first moved to the learner's zone."""
    day = _in_zone(value, time_zone).date() if isinstance(value, datetime) else value
    return babel.dates.format_date(day, format, locale=parse_locale(locale))


def format_time(
    value: time | datetime, locale: str, time_zone: str | None = None, format: str = "short"
) -> str:
    """A time of day in the learner's locale; a datetime is first moved to the learner's zone."""
    if isinstance(value, datetime):
        local = _in_zone(value, time_zone)
        return babel.dates.format_time(
            local, format, tzinfo=local.tzinfo, locale=parse_locale(locale)
        )
    # A bare time is already a local wall-clock time (e.g. quiet hours): no zone conversion.
    return babel.dates.format_time(value, format, locale=parse_locale(locale))


def format_number(value: Number, locale: str) -> str:
    """A number with the locale's separators and digits."""
    return babel.numbers.format_decimal(value, locale=parse_locale(locale))


def format_percent(value: Number, locale: str) -> str:
    """A ratio (0.25) as a percentage in the locale's style ("25 %" in French)."""
    return babel.numbers.format_percent(value, locale=parse_locale(locale))
