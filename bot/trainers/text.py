"""What trainers read, in their language: the CLI's locale, deferred messages, translated errors.

The trainer commands speak `LEARNBOT_CLI_LOCALE` if set, else the locale of the environment
(LANGUAGE, LC_ALL, LC_MESSAGES, LANG, as gettext reads them), mapped to a shipped locale;
English when nothing matches. Errors raised deep in `bot.trainers` carry their message
untranslated (`N_`) with its values, so the command line renders them in the trainer's
language while `str(error)` stays English (logs, the Telegram fallback, tests)::

    raise CohortError(N_("COHORT: no cohort has the id or join code %(cohort)s"), cohort=...)
    ...
    click.echo(ui.render(error))
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from gettext import NullTranslations

from babel import Locale
from babel.core import default_locale
from babel.support import Translations

from bot.i18n import (
    SOURCE_LOCALE,
    UiCatalogs,
    fallback_chain,
    format_date,
    format_number,
    format_time,
    isolate,
    parse_locale,
)
from scheduler.schedule import WEEKDAYS, Schedule

CLI_LOCALE_ENV = "LEARNBOT_CLI_LOCALE"
# gettext's order: LANGUAGE (a list), LC_ALL, LC_MESSAGES, LANG. LC_CTYPE says how text is
# encoded, not which language to speak: Babel looks at it before LANG, so LANG goes first here.
_ENVIRONMENT = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


class Said(str):
    """Words already in the trainer's language: filled into a message as they are.

    Any other string value is a fragment (an id, a code, a name) and is isolated in RTL text.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Text:
    """A message translated only when shown: its msgid and the values it names."""

    message: str
    values: Mapping[str, str | int | Text] = field(default_factory=dict)

    def __str__(self) -> str:
        return CliUi.english().render(self)


def N_(message: str, /, **values: str | int | Text) -> Text:
    """Mark `message` for extraction and keep its values: translated later by `CliUi.render`."""
    return Text(message, values)


class TrainerError(Exception):
    """An error a trainer can cause; `str()` is English, `CliUi.render` translates it."""

    def __init__(self, message: str | Text, /, **values: str | int | Text) -> None:
        if isinstance(message, Text):
            values = {**message.values, **values}
            message = message.message
        self.text = Text(message, values)
        super().__init__(str(self.text))


class CliUi:
    """Translations and formats of one locale, for one command's output."""

    def __init__(self, locale: str, translations: NullTranslations) -> None:
        self.locale = locale
        self.translations = translations

    @classmethod
    def english(cls) -> CliUi:
        """The source language: msgids as written."""
        return cls(SOURCE_LOCALE, NullTranslations())

    def gettext(self, message: str, /, **values: str | int | Text) -> Said:
        """Translate `message` and fill in its values (fragments isolated in RTL locales)."""
        return self._fill(self.translations.gettext(message), values)

    def ngettext(self, singular: str, plural: str, n: int, /, **values: str | int | Text) -> Said:
        """Translate the form of a message for the count `n` (Arabic has six)."""
        return self._fill(self.translations.ngettext(singular, plural, n), values)

    def pgettext(self, context: str, message: str, /) -> Said:
        """Translate a word whose translation depends on what it qualifies (a status)."""
        return Said(self.translations.pgettext(context, message))

    def join(self, parts: Iterable[str]) -> Said:
        """Parts of one line in a list, with the locale's separator ("، " in Arabic)."""
        return Said(self.pgettext("list separator", ", ").join(parts))

    def render(self, text: Text | TrainerError) -> Said:
        """A deferred message or a trainer error, in this locale."""
        if isinstance(text, TrainerError):
            text = text.text
        return self.gettext(text.message, **text.values)

    def number(self, value: int) -> str:
        """A count with the locale's separators, isolated in RTL text."""
        return isolate(format_number(value, self.locale), self.locale)

    def fragment(self, value: object) -> str:
        """An id, code, zone or name shown as it is (isolated in RTL text)."""
        return isolate(str(value), self.locale)

    def date(self, value: date | None) -> str:
        """A date in the locale's medium format; "-" for none."""
        return "-" if value is None else format_date(value, self.locale)

    def datetime(self, value: datetime, time_zone: str | None) -> str:
        """A moment in `time_zone`: medium date, short time (no seconds); naive means UTC."""
        pattern = str(Locale.parse(self.locale).datetime_formats["medium"])  # "{1}, {0}"
        return pattern.format(
            format_time(value, self.locale, time_zone), format_date(value, self.locale, time_zone)
        )

    def _fill(self, template: str, values: Mapping[str, str | int | Text]) -> Said:
        if not values:
            return Said(template)
        return Said(template % {name: self._value(value) for name, value in values.items()})

    def _value(self, value: str | int | Text) -> str:
        if isinstance(value, Text):
            return self.render(value)
        if isinstance(value, Said):
            return value
        if isinstance(value, int):
            return self.number(value)
        return self.fragment(value)


def environment_locale() -> list[str]:
    """Locales the environment asks for, in gettext's order (LANGUAGE may list several)."""
    # Babel takes the first of LANGUAGE's list; gettext would go on to the next ones.
    first = default_locale(_ENVIRONMENT)
    rest = [entry.strip() for entry in os.environ.get("LANGUAGE", "").split(":")[1:]]
    return [locale for locale in (first, *rest) if locale]


def _shipped(requested: str, available: tuple[str, ...]) -> str | None:
    try:
        chain = fallback_chain(requested, source=requested)
    except ValueError:
        return None  # "C.UTF-8", "en_US_POSIX" and the like: not a language we ship
    shipped = {parse_locale(locale): locale for locale in available}
    return next((shipped[locale] for locale in chain if locale in shipped), None)


def cli_locale(setting: str | None, available: tuple[str, ...]) -> str:
    """The shipped locale the trainer commands speak: the setting's, else the environment's."""
    requested = [setting] if setting else environment_locale()
    for locale in requested:
        found = _shipped(locale, available)
        if found is not None:
            return found
    return SOURCE_LOCALE


def cli_ui(catalogs: UiCatalogs, setting: str | None) -> CliUi:
    """The translations of the locale `cli_locale` picks, with its fallback chain."""
    locale = cli_locale(setting, catalogs.available_locales())
    translations: Translations = catalogs.translations(locale)
    return CliUi(locale, translations)


# --- words and formats shared by the commands -------------------------------------------------


def status_word(ui: CliUi, kind: str, status: str) -> str:
    """A stored status in the trainer's language (`Said`); an unknown one as stored."""
    words = {
        "cohort": {
            "active": ui.pgettext("cohort status", "active"),
            "paused": ui.pgettext("cohort status", "paused"),
        },
        "learner": {
            "active": ui.pgettext("learner status", "active"),
            "stopped": ui.pgettext("learner status", "stopped"),
            "paused": ui.pgettext("learner status", "paused"),
            "unreachable": ui.pgettext("learner status", "unreachable"),
            "deleted": ui.pgettext("learner status", "deleted"),
        },
        "enrollment": {
            "active": ui.pgettext("enrollment status", "active"),
            "completed": ui.pgettext("enrollment status", "completed"),
            "paused": ui.pgettext("enrollment status", "paused"),
        },
        "push": {
            "scheduled": ui.pgettext("push status", "scheduled"),
            "sending": ui.pgettext("push status", "sending"),
            "done": ui.pgettext("push status", "done"),
            "cancelled": ui.pgettext("push status", "cancelled"),
        },
        "pacing": {
            "scheduled": ui.pgettext("pacing", "scheduled"),
            "self_paced": ui.pgettext("pacing", "self-paced"),
        },
        "role": {
            "admin": ui.pgettext("role", "admin"),
            "trainer": ui.pgettext("role", "trainer"),
        },
    }
    return words.get(kind, {}).get(status, status)


def describe_schedule(ui: CliUi, schedule: Schedule) -> Said:
    """One line for `cohort show`: days and time as `--days`/`--at` take them, words translated."""
    # The days and clock stay in the options' own syntax: it is what the trainer types back.
    parts = [
        ui.fragment(f"{','.join(WEEKDAYS[d] for d in schedule.days)} {schedule.at:%H:%M}"),
        status_word(ui, "pacing", schedule.pacing),
    ]
    if schedule.quiet is not None:
        parts.append(ui.gettext("quiet %(hours)s", hours=str(schedule.quiet)))
    if schedule.workshop is not None:
        items = " ".join(f"{k}:{v:+d}d" for k, v in schedule.workshop.items.items())
        line = ui.gettext("workshop %(date)s", date=format_date(schedule.workshop.date, ui.locale))
        parts.append(f"{line} {ui.fragment(items)}" if items else line)
    reminders = schedule.reminders
    if reminders.max:
        parts.append(
            ui.ngettext(
                "reminders every %(hours)s h up to %(max)s",
                "reminders every %(hours)s h up to %(max)s",
                reminders.max,
                hours=reminders.after_hours,
                max=reminders.max,
            )
        )
    else:
        parts.append(ui.gettext("no reminders"))
    return ui.join(parts)


def format_eta(ui: CliUi, seconds: float) -> Said:
    """'1 h 05 min', '3 min 20 s', '12 s' in the trainer's language."""
    total = math.ceil(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return ui.gettext("%(hours)s h %(minutes)s min", hours=hours, minutes=f"{minutes:02d}")
    if minutes:
        return ui.gettext("%(minutes)s min %(seconds)s s", minutes=minutes, seconds=f"{secs:02d}")
    return ui.gettext("%(seconds)s s", seconds=secs)
