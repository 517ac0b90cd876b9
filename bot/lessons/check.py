"""`lessons check`: validate courses, measure translations and SMS cost, report in plain text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.domain import ChannelName
from bot.i18n import CatalogError, UiCatalogs, UiTranslator
from bot.lessons.catalogs import CatalogFileError, CourseTranslations, TranslationCounts
from bot.lessons.loader import COURSE_FILE, LessonIssue, LoadedCourse, scan_courses
from bot.lessons.models import Lesson
from bot.lessons.render import lesson_messages, render

SMS_MAX_SEGMENTS = 3
GAPS_LISTED = 10  # per course and locale: a new, untranslated locale should not flood the screen


@dataclass(frozen=True, slots=True)
class SmsCost:
    """What one lesson (intro + first question) costs by SMS in one locale."""

    encoding: str  # "UCS-2" if any part needs it, else "GSM-7"
    segments: int
    messages: int


@dataclass(slots=True)
class CourseReport:
    """Translation status and SMS cost of one valid course."""

    loaded: LoadedCourse
    translations: CourseTranslations
    counts: dict[str, TranslationCounts] = field(default_factory=dict)
    sms: dict[tuple[str, str], SmsCost] = field(default_factory=dict)  # (lesson, locale)


@dataclass(slots=True)
class CheckReport:
    """Everything `lessons check` found."""

    courses: list[CourseReport] = field(default_factory=list)
    errors: list[LessonIssue] = field(default_factory=list)
    warnings: list[LessonIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No error and every declared locale complete."""
        return not self.errors


def sms_cost(lesson: Lesson, locale: str, ui: UiTranslator) -> SmsCost:
    """Encoding and segments of a localized lesson as the SMS channel would send it."""
    parts = [
        part
        for message in lesson_messages(
            lesson, channel=ChannelName.SMS, address="check", locale=locale, ui=ui
        )
        for part in render(message, sms_max_segments=SMS_MAX_SEGMENTS)
    ]
    encoding = "UCS-2" if any(part.encoding == "UCS-2" for part in parts) else "GSM-7"
    return SmsCost(encoding, sum(part.segments for part in parts), len(parts))


def check(path: Path, locales_dir: Path) -> CheckReport:
    """Check every course under `path` (a lessons directory or one course directory)."""
    single = (path / COURSE_FILE).is_file()
    courses, issues = scan_courses(path.parent if single else path)
    if single:
        # Siblings are loaded only to resolve prerequisites; report this course alone.
        inside = path.resolve()
        issues = [i for i in issues if i.file.resolve().is_relative_to(inside)]
        courses = {k: c for k, c in courses.items() if c.directory.resolve() == inside}
    report = CheckReport(errors=list(issues))
    if not courses and not issues:
        # A mistyped folder must not pass as "0 course(s) checked: OK".
        report.errors.append(
            LessonIssue(path, 0, "", f"no course here: no {COURSE_FILE} in it or its sub-folders")
        )
    ui_catalogs = UiCatalogs(locales_dir)
    for loaded in courses.values():
        report.warnings.extend(loaded.warnings)
        try:
            translations = CourseTranslations(loaded, locales_dir)
        except CatalogFileError as exc:
            report.errors.append(LessonIssue(exc.path, exc.line, "", exc.problem))
            continue
        course_report = CourseReport(loaded, translations)
        for locale in translations.locales:
            course_report.counts[locale] = translations.counts(locale)
            gaps = translations.gap_issues(locale)
            report.errors.extend(gaps[:GAPS_LISTED])
            if len(gaps) > GAPS_LISTED:
                catalog = translations.catalog_files[locale]
                more = len(gaps) - GAPS_LISTED
                report.errors.append(
                    LessonIssue(catalog, 0, "", f"{more} more strings missing or fuzzy in {locale}")
                )
            try:
                ui = ui_catalogs.translations(locale)
            except CatalogError as exc:
                report.errors.append(LessonIssue(locales_dir, 0, "", str(exc)))
                continue
            for lesson_id, lesson in loaded.lessons.items():
                localized = translations.localize(lesson, locale)
                course_report.sms[(lesson_id, locale)] = sms_cost(localized, locale, ui)
        report.courses.append(course_report)
    return report


def format_report(report: CheckReport) -> list[str]:
    """The report as plain terminal lines."""
    lines: list[str] = []
    for course_report in report.courses:
        lines.extend(_course_lines(course_report))
        lines.append("")
    if report.warnings:
        lines.append(f"Warnings ({len(report.warnings)}):")
        lines.extend(f"  {warning}" for warning in report.warnings)
        lines.append("")
    if report.errors:
        lines.append(f"Errors ({len(report.errors)}):")
        lines.extend(f"  {error}" for error in report.errors)
        lines.append("")
    verdict = "OK" if report.ok else "FAILED"
    lines.append(
        f"{len(report.courses)} course(s) checked, {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s): {verdict}"
    )
    return lines


def _course_lines(course_report: CourseReport) -> list[str]:
    loaded = course_report.loaded
    translations = course_report.translations
    course = loaded.course
    lines = [
        f"Course {course.id}: {course.title} ({len(loaded.lessons)} lessons, "
        f"source {translations.source_locale}, locales {', '.join(translations.locales)})",
        "  Translations:",
        f"    {'locale':<8}{'translated':>16}{'fuzzy':>8}{'missing':>9}",
    ]
    for locale, counts in course_report.counts.items():
        share = f"{counts.translated}/{counts.total} {counts.percent:5.1f}%"
        flag = "" if counts.complete else "   INCOMPLETE"
        lines.append(f"    {locale:<8}{share:>16}{counts.fuzzy:>8}{counts.missing:>9}{flag}")
    lines.append("  SMS per lesson (encoding segments; * = lesson incomplete in that locale):")
    width = max([len("lesson"), *(len(lesson_id) for lesson_id in loaded.lessons)]) + 2
    header = "".join(f"{locale:<12}" for locale in translations.locales)
    lines.append(f"    {'lesson':<{width}}{header}".rstrip())
    for lesson_id in loaded.lessons:
        cells = []
        for locale in translations.locales:
            cost = course_report.sms.get((lesson_id, locale))
            mark = "" if translations.is_lesson_complete(lesson_id, locale) else "*"
            cells.append(f"{cost.encoding} {cost.segments}{mark}" if cost else "-")
        lines.append(f"    {lesson_id:<{width}}" + "".join(f"{c:<12}" for c in cells).rstrip())
    return lines
