"""The optional learner profile (role, country, gender): choices and reply parsing.

The profile only feeds disaggregated statistics; every question can be skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from babel import Locale

from bot.dialogue.keywords import normalize
from bot.domain import Button
from bot.i18n import SHIPPED_LOCALES, UiTranslator

SKIP_PAYLOAD = "skip"
PROFILE_FIELDS = ("role", "country", "gender")


def role_buttons(tr: UiTranslator) -> tuple[Button, ...]:
    """The role choices, labelled in the learner's language."""
    return (
        Button(tr.gettext("Elected official"), "role:elected"),
        Button(tr.gettext("Manager"), "role:manager"),
        Button(tr.gettext("Technical or professional staff"), "role:technical"),
        Button(tr.gettext("Administrative or support staff"), "role:administrative"),
        Button(tr.gettext("Other"), "role:other"),
        Button(tr.gettext("Skip"), SKIP_PAYLOAD),
    )


def gender_buttons(tr: UiTranslator) -> tuple[Button, ...]:
    """The gender choices, labelled in the learner's language."""
    return (
        Button(tr.gettext("Woman"), "gender:female"),
        Button(tr.gettext("Man"), "gender:male"),
        Button(tr.gettext("Another gender"), "gender:other"),
        Button(tr.gettext("Prefer not to say"), "gender:undisclosed"),
        Button(tr.gettext("Skip"), SKIP_PAYLOAD),
    )


def pick_button(buttons: Sequence[Button], text: str, payload: str | None) -> str | None:
    """The payload a reply selects: the payload itself, its number, or its label."""
    if payload is not None:
        return payload if any(b.payload == payload for b in buttons) else None
    word = normalize(text)
    if word.isdigit():
        number = int(word)
        return buttons[number - 1].payload if 1 <= number <= len(buttons) else None
    for button in buttons:
        if word and normalize(button.label) == word:
            return button.payload
    return None


@cache
def _country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for locale in SHIPPED_LOCALES:
        for code, name in Locale.parse(locale).territories.items():
            # Only ISO 3166 alpha-2 countries, not regions such as "001" (World).
            if len(code) == 2 and code.isalpha():
                names.setdefault(normalize(name), code)
                names.setdefault(code.casefold(), code)
    return names


def parse_country(text: str) -> str | None:
    """An ISO 3166 alpha-2 code from a code ("KE") or a country name in a shipped locale."""
    return _country_names().get(normalize(text))
