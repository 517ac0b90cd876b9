"""Gettext catalogs of courses and UI: extract, update, compile, status, and run-time lookup."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract as babel_extract
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po, write_po

from bot.i18n import SHIPPED_LOCALES, SOURCE_LOCALE, UI_DOMAIN, apply_plural_forms, parse_locale
from bot.lessons.extract import TextField, course_fields, extract_lessons, lesson_fields
from bot.lessons.loader import LessonIssue, LoadedCourse, format_path, load_courses
from bot.lessons.models import Lesson

UI_KEYWORDS: dict[str, Any] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "N_": None,
}
LESSON_KEYWORDS: dict[str, Any] = {"pgettext": ((1, "c"), 2)}
PROJECT = "learnbot"


class CatalogFileError(ValueError):
    """A .po or .pot file cannot be read or is missing; the message names the file and line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.problem = message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def template_path(locales_dir: Path, domain: str) -> Path:
    """Where the .pot of a domain lives: `locales/<domain>.pot`."""
    return locales_dir / f"{domain}.pot"


def po_path(locales_dir: Path, locale: str, domain: str) -> Path:
    """Where a translation lives: `locales/<lang>/LC_MESSAGES/<domain>.po`."""
    return locales_dir / locale / "LC_MESSAGES" / f"{domain}.po"


# --- extract -------------------------------------------------------------------------------


def course_template(loaded: LoadedCourse, root: Path | None = None) -> Catalog:
    """The .pot catalog of one course, built by the Babel extractor from its files."""
    catalog = Catalog(project=PROJECT, domain=loaded.id, fuzzy=False)
    files = [loaded.course_source.file, *loaded.files.values()]
    for file in files:
        location = _relative(file, root)
        with file.open("rb") as handle:
            for lineno, message, comments, context in babel_extract(
                # Babel's stubs type the extractor's yield loosely; the runtime contract is met.
                cast(Any, extract_lessons),
                handle,
                keywords=LESSON_KEYWORDS,
            ):
                catalog.add(
                    message, locations=[(location, lineno)], auto_comments=comments, context=context
                )
    return catalog


def ui_template(code_dirs: Sequence[Path], root: Path | None = None) -> Catalog:
    """The .pot catalog of UI strings in the Python code and console templates of `code_dirs`."""
    catalog = Catalog(project=PROJECT, domain=UI_DOMAIN, fuzzy=False)
    for code_dir in code_dirs:
        if not code_dir.is_dir():
            continue
        for filename, lineno, message, comments, context in extract_from_dir(
            code_dir,
            # The console's Jinja2 templates call `_` and `ngettext` like the Python code.
            method_map=[
                ("**.py", "python"),
                ("**/templates/console/**.html", "jinja2.ext:babel_extract"),
            ],
            keywords=UI_KEYWORDS,
            comment_tags=("TRANSLATORS:",),
            strip_comment_tags=True,
        ):
            location = _relative(code_dir / filename, root)
            catalog.add(
                message, locations=[(location, lineno)], auto_comments=comments, context=context
            )
    return catalog


def _relative(file: Path, root: Path | None) -> str:
    base = (root or Path.cwd()).resolve()
    try:
        return file.resolve().relative_to(base).as_posix()
    except ValueError:
        return file.as_posix()


def extract(
    lessons_dir: Path,
    locales_dir: Path,
    code_dirs: Sequence[Path],
    root: Path | None = None,
) -> list[Path]:
    """Write `<course>.pot` per course and `messages.pot` for the UI; return the changed files.

    Every course must be valid (`LessonValidationError` otherwise): nothing is written then.
    Source locations in the templates are relative to `root` (default: the working directory).
    """
    courses = load_courses(lessons_dir).values()
    locales_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for loaded in courses:
        if _write_catalog(template_path(locales_dir, loaded.id), course_template(loaded, root)):
            written.append(template_path(locales_dir, loaded.id))
    if _write_catalog(template_path(locales_dir, UI_DOMAIN), ui_template(code_dirs, root)):
        written.append(template_path(locales_dir, UI_DOMAIN))
    return written


def _write_catalog(path: Path, catalog: Catalog) -> bool:
    # Skip writes that would only change the creation/revision dates: quiet git diffs.
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, ignore_obsolete=True, include_previous=True)
    new = buffer.getvalue()
    if path.is_file() and _without_dates(path.read_bytes()) == _without_dates(new):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(new)
    return True


def _without_dates(data: bytes) -> bytes:
    return b"\n".join(
        line
        for line in data.splitlines()
        if not line.startswith((b'"POT-Creation-Date:', b'"PO-Revision-Date:'))
    )


# --- update --------------------------------------------------------------------------------


def read_catalog(path: Path, locale: str | None = None, domain: str | None = None) -> Catalog:
    """Read a .po/.pot file; a syntax error names the file and line."""
    try:
        with path.open("rb") as handle:
            return read_po(handle, locale=locale, domain=domain, abort_invalid=True)
    except PoFileError as exc:
        raise CatalogFileError(path, exc.lineno, str(exc)) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CatalogFileError(path, 0, f"cannot read catalog: {exc}") from exc


def update_catalog(
    template: Catalog, existing: Catalog | None, locale: str, *, fuzzy_matching: bool = False
) -> Catalog:
    """Merge `template` into a locale's catalog: changed source strings become fuzzy.

    A string keeps its translation (marked fuzzy) when its msgctxt, the field's identity,
    is unchanged; `fuzzy_matching` adds Babel's similar-text matching (for UI strings,
    which have no msgctxt).
    """
    if existing is None:
        catalog = Catalog(
            locale=Locale.parse(locale),
            domain=template.domain,
            project=PROJECT,
            fuzzy=False,
            creation_date=template.creation_date,
            revision_date=datetime.now().astimezone(),
        )
        for message in template:
            if message.id:
                catalog[message.id] = _clone(message, context=message.context)
        apply_plural_forms(catalog)
        return catalog
    old = {message.context: message for message in existing if message.id and message.context}
    # Babel's difflib matching ignores msgctxt and could pair one field with another's
    # translation, so lesson catalogs match by msgctxt below instead.
    existing.update(template, no_fuzzy_matching=not fuzzy_matching, update_creation_date=True)
    for message in existing:
        previous = old.get(message.context) if message.context else None
        if previous is None or message.string or previous.id == message.id:
            continue
        if previous.string:
            message.string = previous.string
            message.flags.add("fuzzy")
            message.previous_id = (
                [previous.id] if isinstance(previous.id, str) else list(previous.id)
            )
    existing.obsolete.clear()
    apply_plural_forms(existing)
    return existing


def _clone(message: Message, context: str | None) -> Message:
    return Message(
        message.id,
        "" if isinstance(message.id, str) else ("",) * len(message.id),
        locations=list(message.locations),
        flags=set(message.flags) - {"fuzzy"},
        auto_comments=list(message.auto_comments),
        context=context,
    )


def update(
    lessons_dir: Path,
    locales_dir: Path,
    ui_locales: Sequence[str] = SHIPPED_LOCALES,
    ui_source: str = SOURCE_LOCALE,
) -> list[Path]:
    """Create or update each course's .po per declared locale and `messages.po` per UI locale.

    Reads the templates written by `extract`; returns the files that changed.
    """
    courses = load_courses(lessons_dir).values()
    templates = {loaded.id: template_path(locales_dir, loaded.id) for loaded in courses}
    for path in templates.values():
        if not path.is_file():
            raise CatalogFileError(path, 0, "no such template: run `lessons extract` first")
    written = []
    for loaded in courses:
        template = read_catalog(templates[loaded.id], domain=loaded.id)
        for locale in loaded.course.locales:
            if locale != loaded.course.source_locale:
                written.extend(_update_one(template, locales_dir, locale, loaded.id, False))
    ui_pot = template_path(locales_dir, UI_DOMAIN)
    if ui_pot.is_file():
        template = read_catalog(ui_pot, domain=UI_DOMAIN)
        for locale in ui_locales:
            if locale != ui_source:
                written.extend(_update_one(template, locales_dir, locale, UI_DOMAIN, True))
    return written


def _update_one(
    template: Catalog, locales_dir: Path, locale: str, domain: str, fuzzy_matching: bool
) -> list[Path]:
    path = po_path(locales_dir, locale, domain)
    existing = read_catalog(path, locale=locale, domain=domain) if path.is_file() else None
    catalog = update_catalog(template, existing, locale, fuzzy_matching=fuzzy_matching)
    return [path] if _write_catalog(path, catalog) else []


# --- compile -------------------------------------------------------------------------------


def compile(locales_dir: Path) -> list[Path]:
    """Write a .mo next to every .po under `locales_dir` (fuzzy entries are left out)."""
    written = []
    for po in sorted(locales_dir.glob("*/LC_MESSAGES/*.po")):
        catalog = read_catalog(po, locale=po.parent.parent.name, domain=po.stem)
        mo = po.with_suffix(".mo")
        with mo.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        written.append(mo)
    return written


# --- status and run-time lookup ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranslationCounts:
    """How many strings of a course are translated, fuzzy and missing in one locale."""

    translated: int = 0
    fuzzy: int = 0
    missing: int = 0

    @property
    def total(self) -> int:
        """All strings of the course."""
        return self.translated + self.fuzzy + self.missing

    @property
    def percent(self) -> float:
        """Share translated (not fuzzy), 0 to 100."""
        return 100.0 * self.translated / self.total if self.total else 100.0

    @property
    def complete(self) -> bool:
        """Everything translated and nothing fuzzy."""
        return self.fuzzy == 0 and self.missing == 0


@dataclass(frozen=True, slots=True)
class Gap:
    """One string that is not usable in a locale: missing or fuzzy."""

    locale: str
    lesson_id: str | None  # None for course.yaml
    field: TextField
    state: str  # "missing" or "fuzzy"
    po_line: int | None  # line of the fuzzy entry in the .po, if any


class CourseTranslations:
    """Translations of one course, read from its .po files (never a stale .mo); build once."""

    def __init__(self, loaded: LoadedCourse, locales_dir: Path) -> None:
        self.loaded = loaded
        self.locales_dir = locales_dir
        self.source_locale = _normal(loaded.course.source_locale)
        self.locales = tuple(_normal(locale) for locale in loaded.course.locales)
        self._fields: dict[str | None, list[TextField]] = {None: list(course_fields(loaded.course))}
        for lesson_id, lesson in loaded.lessons.items():
            self._fields[lesson_id] = list(lesson_fields(lesson))
        self._strings: dict[str, dict[tuple[str, str], str]] = {}
        self._fuzzy: dict[str, dict[tuple[str, str], int | None]] = {}
        self.catalog_files: dict[str, Path] = {}
        for locale in self.locales:
            if locale != self.source_locale:
                self._read(locale)
        self._complete = {
            (lesson_id, locale): not self._gaps_of(lesson_id, locale)
            for lesson_id in loaded.lessons
            for locale in self.locales
        }
        self._localized: dict[tuple[str, str], Lesson] = {}

    def _read(self, locale: str) -> None:
        path = po_path(self.locales_dir, locale, self.loaded.id)
        self.catalog_files[locale] = path
        strings: dict[tuple[str, str], str] = {}
        fuzzy: dict[tuple[str, str], int | None] = {}
        if path.is_file():
            for message in read_catalog(path, locale=locale, domain=self.loaded.id):
                if not message.id or not isinstance(message.id, str) or message.context is None:
                    continue
                key = (message.context, message.id)
                if message.fuzzy:
                    fuzzy[key] = message.lineno
                elif isinstance(message.string, str) and message.string:
                    strings[key] = message.string
        self._strings[locale] = strings
        self._fuzzy[locale] = fuzzy

    def _gaps_of(self, lesson_id: str | None, locale: str) -> list[Gap]:
        if locale == self.source_locale:
            return []
        strings = self._strings.get(locale, {})
        fuzzy = self._fuzzy.get(locale, {})
        gaps = []
        for text_field in self._fields[lesson_id]:
            key = (text_field.context, text_field.text)
            if key in strings:
                continue
            state = "fuzzy" if key in fuzzy else "missing"
            gaps.append(Gap(locale, lesson_id, text_field, state, fuzzy.get(key)))
        return gaps

    def gaps(self, locale: str) -> list[Gap]:
        """Every missing or fuzzy string of the course in `locale`, course.yaml first."""
        return [gap for key in self._fields for gap in self._gaps_of(key, locale)]

    def counts(self, locale: str) -> TranslationCounts:
        """Translated / fuzzy / missing strings of the whole course in `locale`."""
        total = sum(len(fields) for fields in self._fields.values())
        gaps = self.gaps(locale)
        fuzzy = sum(1 for gap in gaps if gap.state == "fuzzy")
        missing = len(gaps) - fuzzy
        return TranslationCounts(total - fuzzy - missing, fuzzy, missing)

    def is_lesson_complete(self, lesson_id: str, locale: str) -> bool:
        """Whether every string of the lesson is translated, and none fuzzy, in `locale`."""
        return self._complete.get((lesson_id, _normal(locale)), False)

    def pick_locale(self, lesson_id: str, chain: Sequence[str]) -> str:
        """The first locale of `chain` the lesson is complete in; else the source locale."""
        for locale in chain:
            if self.is_lesson_complete(lesson_id, locale):
                return _normal(locale)
        return self.source_locale

    def translate(self, context: str, text: str, locale: str) -> str:
        """One string in `locale`, or the source text when it has no usable translation."""
        return self._strings.get(_normal(locale), {}).get((context, text), text)

    def localize(self, lesson: Lesson, locale: str) -> Lesson:
        """A copy of `lesson` with every text translated into `locale` (never from fuzzy)."""
        locale = _normal(locale)
        if locale == self.source_locale:
            return lesson
        # Only the course's own lesson objects are cached: a caller's copy may differ.
        cacheable = self.loaded.lessons.get(lesson.id) is lesson
        key = (lesson.id, locale)
        if cacheable and key in self._localized:
            return self._localized[key]
        data = lesson.model_dump(mode="json")
        for text_field in lesson_fields(lesson):
            _set(data, text_field.path, self.translate(text_field.context, text_field.text, locale))
        localized = Lesson.model_validate(data)
        if cacheable:
            self._localized[key] = localized
        return localized

    def course_title(self, locale: str) -> str:
        """The course title in `locale`, or in the source locale when it is not translated."""
        return self.translate("course/title", self.loaded.course.title, locale)

    def course_description(self, locale: str) -> str | None:
        """The course description in `locale`, if the course has one."""
        description = self.loaded.course.description
        if description is None:
            return None
        return self.translate("course/description", description, locale)

    def gap_issues(self, locale: str) -> list[LessonIssue]:
        """Each gap as a located issue: the lesson file, line and field, and the catalog."""
        issues = []
        catalog = self.catalog_files.get(locale)
        for gap in self.gaps(locale):
            source = self.loaded.sources["course" if gap.lesson_id is None else gap.lesson_id]
            where = f"{catalog}:{gap.po_line}" if gap.po_line and catalog else str(catalog)
            message = f"{gap.state} {locale} translation (msgctxt {gap.field.context!r} in {where})"
            issues.append(
                LessonIssue(
                    source.file, source.line(gap.field.path), format_path(gap.field.path), message
                )
            )
        return issues


def _normal(locale: str) -> str:
    try:
        return parse_locale(locale)
    except ValueError:
        return locale


def _set(data: Any, path: tuple[str | int, ...], value: str) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def load_translations(
    courses: Iterable[LoadedCourse], locales_dir: Path
) -> dict[str, CourseTranslations]:
    """`CourseTranslations` for every course, keyed by course id."""
    return {loaded.id: CourseTranslations(loaded, locales_dir) for loaded in courses}
