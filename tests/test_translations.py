"""Every user-facing string is translated in every shipped locale: UI, course content, demo."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from bot.config import Settings
from bot.demo import run_demo
from bot.i18n import SHIPPED_LOCALES, SOURCE_LOCALE, plural_forms
from bot.lessons.catalogs import load_translations, po_path, ui_template
from bot.lessons.loader import load_courses

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
TRANSLATED = [locale for locale in SHIPPED_LOCALES if locale != SOURCE_LOCALE]


@pytest.fixture(scope="module")
def ui_strings() -> Catalog:
    # Extracted from the code as it is now, so a new string without translations fails here.
    return ui_template([ROOT / "bot", ROOT / "scheduler"], ROOT)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_ui_string_is_translated(ui_strings: Catalog, locale: str) -> None:
    with po_path(LOCALES, locale, "messages").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    untranslated = []
    for message in ui_strings:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        strings = found.string if found is not None else None
        forms = strings if isinstance(strings, tuple) else (strings,)
        if found is None or found.fuzzy or not all(forms):
            untranslated.append(message.id)
    assert untranslated == [], f"{locale}: untranslated or fuzzy UI strings"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_ui_translations_keep_their_placeholders(locale: str) -> None:
    with po_path(LOCALES, locale, "messages").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    problems = [(message.id, str(errors)) for message, errors in catalog.check()]
    assert problems == []


SHIPPED_CATALOGS = sorted(LOCALES.glob("*/LC_MESSAGES/*.po"))
# (count, form) per language: what each shipped header must pick, read off its compiled rule.
EXPECTED_FORMS = {
    "fr": [(0, 0), (1, 0), (2, 1), (1_000_000, 1)],
    "es": [(0, 1), (1, 0), (2, 1), (1_000_000, 1)],
    "pt": [(0, 1), (1, 0), (2, 1), (1_000_000, 1)],
    "sw": [(0, 1), (1, 0), (2, 1), (1_000_000, 1)],
    "ar": [(0, 0), (1, 1), (2, 2), (3, 3), (11, 4), (100, 5), (1_000_000, 5)],
}


@pytest.mark.parametrize("path", SHIPPED_CATALOGS, ids=lambda path: str(path.relative_to(LOCALES)))
def test_every_shipped_catalog_carries_our_plural_forms(path: Path) -> None:
    # gettext reads each catalog's own header at run time: it must be ours, not Babel's of
    # the day, and every plural entry must have exactly that many forms.
    locale = path.parent.parent.name
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    assert catalog.plural_forms == plural_forms(locale)
    plurals = [m for m in catalog if m.id and isinstance(m.string, tuple)]
    assert all(len(m.string) == catalog.num_plurals for m in plurals)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    translations = Translations(buffer)
    assert [(n, translations.plural(n)) for n, _ in EXPECTED_FORMS[locale]] == EXPECTED_FORMS[
        locale
    ]


def test_arabic_ui_catalog_has_six_plural_forms() -> None:
    with po_path(LOCALES, "ar", "messages").open("rb") as handle:
        catalog = read_po(handle, locale="ar")
    assert catalog.num_plurals == 6
    plurals = [m for m in catalog if m.id and isinstance(m.string, tuple)]
    assert plurals and all(len(m.string) == 6 and all(m.string) for m in plurals)


def test_every_declared_locale_of_every_shipped_course_is_complete() -> None:
    courses = load_courses(ROOT / "lessons")
    translations = load_translations(courses.values(), LOCALES)
    for course_id, loaded in courses.items():
        for locale in loaded.course.locales:
            counts = translations[course_id].counts(locale)
            assert (counts.fuzzy, counts.missing) == (0, 0), f"{course_id} {locale}: {counts}"
            for lesson_id in loaded.lessons:
                assert translations[course_id].is_lesson_complete(lesson_id, locale)


async def _demo_bot_lines(locale: str) -> list[str]:
    settings = Settings(lessons_dir=ROOT / "lessons", locales_dir=LOCALES)
    out = io.StringIO()
    await run_demo(settings, locale=locale, out=out)
    return [line for line in out.getvalue().splitlines() if line.startswith(("< bot:", "  ["))]


@pytest.mark.parametrize("locale", TRANSLATED)
async def test_the_demo_transcript_is_wholly_translated(locale: str) -> None:
    english = set(await _demo_bot_lines("en"))
    translated = await _demo_bot_lines(locale)
    # The language menu lists each language in its own name, the same in every locale.
    # Rating buttons are the numbers 1 to 5, the same in every locale too.
    same = [
        line
        for line in translated
        if line in english and "[Kiswahili]" not in line and any(c.isalpha() for c in line)
    ]
    assert same == [], f"{locale}: lines left in English"
    assert len(translated) >= 30
