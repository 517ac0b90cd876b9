"""`lessons check`: validate courses, measure translations and SMS cost, report in plain text."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from bot.i18n import CatalogError, UiCatalogs
from bot.lessons.catalogs import CatalogFileError, CourseTranslations, TranslationCounts
from bot.lessons.cost import SmsCost, segment_budget, sms_cost
from bot.lessons.loader import COURSE_FILE, LessonIssue, LoadedCourse, scan_courses
from bot.lessons.sms import DEFAULT_SMS_FOLD

SMS_MAX_SEGMENTS = 3
GAPS_LISTED = 10  # per course and locale: a new, untranslated locale should not flood the screen

__all__ = ["SMS_MAX_SEGMENTS", "CheckReport", "CourseReport", "SmsCost", "check", "format_report"]


@dataclass(slots=True)
class CourseReport:
    """Translation status and SMS cost of one valid course."""

    loaded: LoadedCourse
    translations: CourseTranslations
    counts: dict[str, TranslationCounts] = field(default_factory=dict)
    sms: dict[tuple[str, str], SmsCost] = field(default_factory=dict)  # (lesson, locale)

    def per_learner(self, locale: str) -> int:
        """SMS segments one learner receives for the whole course in `locale`."""
        return sum(cost.segments for (_, where), cost in self.sms.items() if where == locale)

    def ratio(self, lesson_id: str, locale: str) -> float | None:
        """The lesson's segments in `locale` over those in the source locale."""
        cost = self.sms.get((lesson_id, locale))
        source = self.sms.get((lesson_id, self.translations.source_locale))
        return cost.segments / source.segments if cost and source and source.segments else None


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


def check(
    path: Path,
    locales_dir: Path,
    *,
    sms_max_segments: int = SMS_MAX_SEGMENTS,
    sms_fold: Collection[str] = DEFAULT_SMS_FOLD,
) -> CheckReport:
    """Check every course under `path` (a lessons directory or one course directory).

    SMS cost is counted as `render` sends it with these settings; a lesson over its
    `sms_segment_budget` in a locale is a warning.
    """
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
                cost = sms_cost(localized, locale, ui, max_segments=sms_max_segments, fold=sms_fold)
                course_report.sms[(lesson_id, locale)] = cost
                budget = segment_budget(loaded.course, lesson, locale)
                if budget is not None and cost.segments > budget:
                    report.warnings.append(_over_budget(loaded, lesson_id, locale, cost, budget))
        report.courses.append(course_report)
    return report


def _over_budget(
    loaded: LoadedCourse, lesson_id: str, locale: str, cost: SmsCost, budget: int
) -> LessonIssue:
    # Located where the budget is set: the lesson's own, else the course's (naming the lesson).
    field_path = ("sms_segment_budget",)
    over = f"{locale}: {cost.segments} SMS segments, over the budget of {budget}"
    if loaded.lessons[lesson_id].sms_segment_budget is not None:
        source = loaded.sources[lesson_id]
        return LessonIssue(source.file, source.line(field_path), field_path[0], over)
    source = loaded.sources["course"]
    return LessonIssue(source.file, source.line(field_path), field_path[0], f"{lesson_id}: {over}")


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
    source = translations.source_locale
    lines.append(
        "  SMS per lesson (encoding, segments, times the segments in "
        f"{source}; * = lesson incomplete in that locale):"
    )
    width = max([len("lesson"), *(len(lesson_id) for lesson_id in loaded.lessons)]) + 2
    header = "".join(f"{locale:<{CELL}}" for locale in translations.locales)
    lines.append(f"    {'lesson':<{width}}{header}".rstrip())
    for lesson_id in loaded.lessons:
        cells = []
        for locale in translations.locales:
            cost = course_report.sms.get((lesson_id, locale))
            mark = "" if translations.is_lesson_complete(lesson_id, locale) else "*"
            ratio = course_report.ratio(lesson_id, locale)
            times = f" x{ratio:.2f}" if ratio is not None and locale != source else ""
            cells.append(f"{cost.encoding} {cost.segments}{mark}{times}" if cost else "-")
        lines.append(f"    {lesson_id:<{width}}" + _cells(cells))
    own = course_report.per_learner(source)
    totals = [
        f"{course_report.per_learner(locale)}"
        + (f" x{course_report.per_learner(locale) / own:.2f}" if own and locale != source else "")
        for locale in translations.locales
    ]
    lines.append(f"    {'per learner':<{width}}" + _cells(totals))
    return lines


CELL = 17  # "UCS-2 14* x2.33" and a gap


def _cells(cells: list[str]) -> str:
    return "".join(f"{cell:<{CELL}}" for cell in cells).rstrip()
