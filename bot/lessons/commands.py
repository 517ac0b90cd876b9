"""The `learnbot lessons` command group: extract, update, compile, check, preview."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

import bot
from bot.config import ConfigError, Settings
from bot.domain import ChannelName, RenderedMessage
from bot.i18n import UiCatalogs, fallback_chain, parse_locale
from bot.lessons import catalogs
from bot.lessons.catalogs import CatalogFileError, CourseTranslations
from bot.lessons.check import check, format_report
from bot.lessons.cost import SmsCost, sms_parts
from bot.lessons.loader import LessonValidationError, load_courses
from bot.lessons.render import lesson_sequence, render
from bot.lessons.sms import sms_units, split_segments

F = TypeVar("F", bound=Callable[..., Any])
PREVIEW_CHANNELS = ("telegram", "whatsapp", "sms", "sandbox")


def _directory_options(command: F) -> F:
    command = click.option(
        "--locales-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="gettext catalogs [default: LEARNBOT_LOCALES_DIR or ./locales]",
    )(command)
    return click.option(
        "--lessons-dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="courses [default: LEARNBOT_LESSONS_DIR or ./lessons]",
    )(command)


def _dirs(lessons_dir: Path | None, locales_dir: Path | None) -> tuple[Path, Path]:
    # Read settings only for what was not given, so a complete command line needs no .env.
    if lessons_dir is not None and locales_dir is not None:
        return lessons_dir, locales_dir
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    return lessons_dir or settings.lessons_dir, locales_dir or settings.locales_dir


def _sms_settings() -> Settings:
    # SMS cost depends on LEARNBOT_SMS_MAX_SEGMENTS and LEARNBOT_SMS_FOLD: count as sent.
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _fail_on_invalid(exc: LessonValidationError) -> click.ClickException:
    return click.ClickException("invalid course files:\n" + "\n".join(map(str, exc.issues)))


@click.group("lessons")
def lessons() -> None:
    """Author and translate courses: extract, update, compile, check, preview."""


@lessons.command("extract")
@_directory_options
@click.option(
    "--code-dir",
    "code_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Python code to scan for UI strings [default: the bot and scheduler packages]",
)
def extract_command(
    lessons_dir: Path | None, locales_dir: Path | None, code_dirs: tuple[Path, ...]
) -> None:
    """Write locales/<course>.pot for every course and locales/messages.pot for the UI."""
    lessons_path, locales_path = _dirs(lessons_dir, locales_dir)
    project = Path(bot.__file__).resolve().parent.parent
    dirs = list(code_dirs) or [project / "bot", project / "scheduler"]
    try:
        written = catalogs.extract(lessons_path, locales_path, dirs)
    except LessonValidationError as exc:
        raise _fail_on_invalid(exc) from exc
    _report_written(written, "template")


@lessons.command("update")
@_directory_options
def update_command(lessons_dir: Path | None, locales_dir: Path | None) -> None:
    """Create or update the .po files from the templates; changed strings become fuzzy."""
    lessons_path, locales_path = _dirs(lessons_dir, locales_dir)
    try:
        written = catalogs.update(lessons_path, locales_path)
    except LessonValidationError as exc:
        raise _fail_on_invalid(exc) from exc
    except CatalogFileError as exc:
        raise click.ClickException(str(exc)) from exc
    _report_written(written, "catalog")


@lessons.command("compile")
@_directory_options
def compile_command(lessons_dir: Path | None, locales_dir: Path | None) -> None:
    """Compile every .po into a .mo next to it (fuzzy entries are left out)."""
    _, locales_path = _dirs(lessons_dir or Path("."), locales_dir)
    try:
        written = catalogs.compile(locales_path)
    except CatalogFileError as exc:
        raise click.ClickException(str(exc)) from exc
    _report_written(written, "compiled catalog")


def _report_written(paths: list[Path], noun: str) -> None:
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(f"{len(paths)} {noun}(s) written" if paths else f"every {noun} is up to date")


@lessons.command("check")
@click.argument(
    "path", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@_directory_options
@click.option("--strict", is_flag=True, help="exit 1 on warnings too (e.g. over an SMS budget)")
@click.pass_context
def check_command(
    ctx: click.Context,
    path: Path | None,
    lessons_dir: Path | None,
    locales_dir: Path | None,
    strict: bool,
) -> None:
    """Validate courses, show translation status and SMS cost; exit 1 on any problem."""
    lessons_path, locales_path = _dirs(path or lessons_dir, locales_dir)
    settings = _sms_settings()
    report = check(
        lessons_path,
        locales_path,
        sms_max_segments=settings.sms_max_segments,
        sms_fold=settings.sms_fold,
    )
    for line in format_report(report):
        click.echo(line)
    if strict and report.ok and report.warnings:
        click.echo(f"--strict: {len(report.warnings)} warning(s) count as failures")
    ctx.exit(0 if report.ok and not (strict and report.warnings) else 1)


@lessons.command("preview")
@click.argument("course_id", metavar="COURSE")
@click.argument("lesson_id", metavar="LESSON")
@click.option("--locale", help="learner's locale [default: the course's source locale]")
@click.option(
    "--channel", type=click.Choice(PREVIEW_CHANNELS), default="telegram", show_default=True
)
@_directory_options
def preview_command(
    course_id: str,
    lesson_id: str,
    locale: str | None,
    channel: str,
    lessons_dir: Path | None,
    locales_dir: Path | None,
) -> None:
    """Print a lesson and its questions exactly as they would be sent."""
    lessons_path, locales_path = _dirs(lessons_dir, locales_dir)
    try:
        courses = load_courses(lessons_path)
    except LessonValidationError as exc:
        raise _fail_on_invalid(exc) from exc
    if course_id not in courses:
        raise click.ClickException(
            f"unknown course {course_id!r}; courses: {', '.join(sorted(courses)) or 'none'}"
        )
    loaded = courses[course_id]
    if lesson_id not in loaded.lessons:
        raise click.ClickException(
            f"course {course_id!r} has no lesson {lesson_id!r}; lessons: "
            + ", ".join(loaded.lessons)
        )
    try:
        requested = parse_locale(locale or loaded.course.source_locale)
        translations = CourseTranslations(loaded, locales_path)
        ui = UiCatalogs(locales_path).translations(requested)
    except ValueError as exc:  # unknown locale, unreadable catalog
        raise click.ClickException(str(exc)) from exc
    chain = fallback_chain(requested, source=translations.source_locale)
    delivered = translations.pick_locale(lesson_id, chain)
    lesson = translations.localize(loaded.lessons[lesson_id], delivered)
    click.echo(f"Course {course_id}, lesson {lesson_id}, channel {channel}")
    click.echo(f"Locale requested {requested}, delivered {delivered} (chain {' > '.join(chain)})")
    target = ChannelName(channel)
    if target == ChannelName.SMS:
        # The very count `lessons check` prints: the same function, the same settings.
        settings = _sms_settings()
        sent = sms_parts(
            lesson,
            requested,
            ui,
            max_segments=settings.sms_max_segments,
            fold=settings.sms_fold,
            address="preview",
        )
    else:
        sent = [
            (title, render(message))
            for title, message in lesson_sequence(
                lesson, channel=target, address="preview", locale=requested, ui=ui
            )
        ]
    for title, parts in sent:
        for part_number, part in enumerate(parts, 1):
            click.echo("")
            click.echo(_part_heading(title, part_number, part))
            click.echo(_part_body(part))
    if target == ChannelName.SMS:
        cost = SmsCost.of([part for _, parts in sent for part in parts])
        click.echo("")
        click.echo(f"Total: {cost.segments} SMS segment(s) in {cost.messages} message(s)")


def _part_heading(title: str, part_number: int, part: RenderedMessage) -> str:
    heading = f"=== {title}, message {part_number}"
    if part.channel == ChannelName.SMS:
        heading += f": {part.encoding}, {part.segments} segment(s)"
    return heading + " ==="


def _part_body(part: RenderedMessage) -> str:
    lines = []
    if part.image_url:
        lines.append(f"[image {part.image_url}]")
    if part.channel == ChannelName.SMS and part.segments > 1:
        # Show what each phone network segment carries, with its unit count.
        segments = split_segments(part.text)
        for index, segment in enumerate(segments, start=1):
            units = sms_units(segment, "UCS-2" if part.encoding == "UCS-2" else "GSM-7")
            lines.append(f"--- segment {index}/{len(segments)} ({units} units) ---")
            lines.append(segment)
    else:
        lines.append(part.text)
    lines.extend(f"[button {button.label!r} -> {button.payload}]" for button in part.buttons)
    return "\n".join(lines)
