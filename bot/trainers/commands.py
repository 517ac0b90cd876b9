"""`learnbot cohort ...` and `learnbot user ...`: what trainers and admins type.

Every cohort command acts as a user named by `--as EMAIL` or the `LEARNBOT_USER`
environment variable: an admin acts on every cohort, a trainer only on their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.config import ConfigError, Settings
from bot.domain import Role
from bot.lessons.loader import LessonValidationError, LoadedCourse, load_courses
from bot.store.db import create_engine
from bot.trainers import cohorts as cohort_store
from bot.trainers import importer, push
from bot.trainers.cohorts import CohortError, CohortInfo
from bot.trainers.roles import (
    ACTING_USER_ENV,
    RoleError,
    UserInputError,
    UserRecord,
    acting_user,
    add_user,
    has_admin,
    list_users,
    require_admin,
    user_by_email,
)
from scheduler.schedule import ScheduleError, schedule_from_options

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
BOT_USERNAME_ENV = "TELEGRAM_BOT_USERNAME"
USER_ERRORS = (RoleError, CohortError, ScheduleError, UserInputError, push.PushError)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _courses(settings: Settings) -> dict[str, LoadedCourse]:
    try:
        return load_courses(settings.lessons_dir)
    except LessonValidationError as exc:
        raise click.ClickException(
            "invalid course files:\n" + "\n".join(map(str, exc.issues))
        ) from exc


def _run(settings: Settings, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Migrate, open an engine, run `action`, close; user errors become clean CLI errors."""
    from bot.store.migrate import upgrade

    upgrade(settings.database_url)  # a fresh install's first `user add` needs the tables

    async def main() -> T:
        engine = create_engine(settings.database_url)
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except USER_ERRORS as exc:
        raise click.ClickException(str(exc)) from exc


async def _in_transaction(
    engine: AsyncEngine,
    as_email: str | None,
    step: Callable[[AsyncConnection, UserRecord], Awaitable[T]],
) -> T:
    async with engine.begin() as conn:
        user = await acting_user(conn, as_email)
        return await step(conn, user)


def _acting(command: F) -> F:
    return click.option(
        "--as",
        "as_email",
        envvar=ACTING_USER_ENV,
        metavar="EMAIL",
        help=f"Act as this trainer or admin [default: ${ACTING_USER_ENV}].",
    )(command)


def _bot_username(command: F) -> F:
    return click.option(
        "--telegram-bot-username",
        "bot_username",
        envvar=BOT_USERNAME_ENV,
        help=f"For the join deep link [default: ${BOT_USERNAME_ENV}].",
    )(command)


def _schedule_options(command: F) -> F:
    options = [
        click.option("--remind-max", type=int, help="Reminders before the learner is paused."),
        click.option("--remind-after", type=int, help="Hours without an answer before a reminder."),
        click.option(
            "--item",
            "items",
            multiple=True,
            metavar="LESSON=OFFSET",
            help="A lesson placed relative to the workshop, e.g. survey=+14d.",
        ),
        click.option("--workshop", help="Workshop date YYYY-MM-DD (or off)."),
        click.option("--quiet", help="Quiet hours, e.g. 20:00-07:00 (or off)."),
        click.option("--at", "send_time", help="Local send time HH:MM, e.g. 09:00."),
        click.option("--days", help="Send days, e.g. mon,wed,fri."),
        click.option("--pacing", type=click.Choice(["scheduled", "self_paced"])),
        click.option(
            "--start",
            "start_date",
            type=click.DateTime(["%Y-%m-%d"]),
            help="Start date YYYY-MM-DD.",
        ),
    ]
    for option in options:
        command = option(command)
    return command


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


# --- user ------------------------------------------------------------------------------------


@click.group("user")
def user_group() -> None:
    """Trainers and admins: who may manage cohorts."""


@user_group.command("add")
@click.argument("name")
@click.option("--email", required=True, help="Their e-mail: what --as names.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--telegram-chat-id", help="Their Telegram chat id, for /push from Telegram.")
@click.option("--phone", help="Their phone number, +E.164.")
@_acting
def user_add(
    name: str,
    email: str,
    role: str,
    telegram_chat_id: str | None,
    phone: str | None,
    as_email: str | None,
) -> None:
    """Add a trainer or an admin (the very first user must be an admin)."""

    async def action(engine: AsyncEngine) -> UserRecord:
        async with engine.begin() as conn:
            if await has_admin(conn):
                require_admin(await acting_user(conn, as_email), "add users")
            elif role != Role.ADMIN.value:
                raise RoleError("there is no admin yet: add an admin first (--role admin)")
            return await add_user(
                conn,
                name=name,
                email=email,
                role=Role(role),
                telegram_chat_id=telegram_chat_id,
                phone=phone,
            )

    user = _run(_settings(), action)
    click.echo(f"user {user.id}: {user.label()} ({user.role.value})")


@user_group.command("list")
def user_list() -> None:
    """List trainers and admins."""

    async def action(engine: AsyncEngine) -> list[UserRecord]:
        async with engine.connect() as conn:
            return await list_users(conn)

    for user in _run(_settings(), action):
        extra = "".join(
            f"  {label} {value}"
            for label, value in (("telegram", user.telegram_chat_id), ("phone", user.phone))
            if value
        )
        click.echo(f"{user.id:>4}  {user.role.value:<7}  {user.label()}{extra}")


# --- cohort ----------------------------------------------------------------------------------


@click.group("cohort")
def cohort_group() -> None:
    """Create cohorts, enrol learners, set schedules, push lessons, watch progress."""


@cohort_group.command("create")
@click.argument("name")
@click.option(
    "--course",
    "course_ids",
    multiple=True,
    required=True,
    help="A course id; repeat for a pathway, in order.",
)
@click.option("--time-zone", required=True, help="The cohort's default IANA zone.")
@click.option("--owner", "owner_email", help="Admins: the trainer who owns it (default: you).")
@_schedule_options
@_bot_username
@_acting
def cohort_create(
    name: str,
    course_ids: tuple[str, ...],
    time_zone: str,
    owner_email: str | None,
    bot_username: str | None,
    as_email: str | None,
    start_date: datetime | None,
    **schedule: Any,
) -> None:
    """Create a cohort with a new join code."""
    settings = _settings()
    courses = _courses(settings)
    plan = _schedule(None, schedule)

    async def step(conn: AsyncConnection, user: UserRecord) -> CohortInfo:
        owner = None
        if owner_email is not None:
            owner = await user_by_email(conn, owner_email)
            if owner is None:
                raise RoleError(f"--owner: no user has the e-mail {owner_email!r}")
        return await cohort_store.create_cohort(
            conn,
            owner=cohort_store.owner_check(user, owner),
            name=name,
            course_ids=course_ids,
            courses=courses,
            time_zone=time_zone,
            schedule=plan,
            start_date=_day(start_date),
        )

    cohort = _run(settings, lambda engine: _in_transaction(engine, as_email, step))
    click.echo(f"cohort {cohort.id} created: {cohort.name}")
    click.echo(f"join code: {cohort.join_code}")
    link = cohort.deep_link(bot_username)
    click.echo(
        f"telegram link: {link}"
        if link
        else f"telegram link: set {BOT_USERNAME_ENV} or --telegram-bot-username to get one"
    )


def _schedule(cohort: CohortInfo | None, options: Mapping[str, Any]) -> Any:
    try:
        return schedule_from_options(
            base=cohort.schedule if cohort is not None else None,
            days=options.get("days"),
            at=options.get("send_time"),
            quiet=options.get("quiet"),
            pacing=options.get("pacing"),
            workshop=options.get("workshop"),
            items=options.get("items") or (),
            remind_after=options.get("remind_after"),
            remind_max=options.get("remind_max"),
        )
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from exc


@cohort_group.command("list")
@_acting
def cohort_list(as_email: str | None) -> None:
    """List the cohorts you may act on (admins: all)."""

    async def step(conn: AsyncConnection, user: UserRecord) -> list[tuple[CohortInfo, int]]:
        return await cohort_store.list_cohorts(conn, user)

    rows = _run(_settings(), lambda engine: _in_transaction(engine, as_email, step))
    if not rows:
        click.echo("no cohorts")
    for cohort, learners in rows:
        click.echo(
            f"{cohort.id:>4}  {cohort.join_code}  {cohort.status:<6}  {learners:>6} learners  "
            f"{cohort.name}  [{', '.join(cohort.course_ids)}]  owner {cohort.owner_name or '-'}"
        )


@cohort_group.command("show")
@click.argument("cohort")
@click.option("--learners", "with_learners", is_flag=True, help="List every learner too.")
@_bot_username
@_acting
def cohort_show(
    cohort: str, with_learners: bool, bot_username: str | None, as_email: str | None
) -> None:
    """Show a cohort, its learners by status, and their progress."""

    async def step(
        conn: AsyncConnection, user: UserRecord
    ) -> tuple[CohortInfo, cohort_store.CohortReport]:
        info = await cohort_store.cohort_for(conn, user, cohort)
        return info, await cohort_store.cohort_report(conn, info, with_learners=with_learners)

    info, report = _run(_settings(), lambda engine: _in_transaction(engine, as_email, step))
    echo = click.echo
    echo(f"cohort {info.id}: {info.name} ({info.status})")
    echo(f"  owner:      {info.owner_name or '-'}")
    echo(f"  courses:    {' -> '.join(info.course_ids)}")
    echo(f"  join code:  {info.join_code}")
    echo(f"  link:       {info.deep_link(bot_username) or '- (no bot username)'}")
    echo(f"  time zone:  {info.time_zone}")
    echo(f"  start:      {info.start_date.isoformat() if info.start_date else '-'}")
    echo(f"  schedule:   {info.schedule.describe()}")
    echo(f"learners: {report.total_learners}")
    for status, count in sorted(report.learners_by_status.items()):
        echo(f"  {status:<12} {count}")
    echo(
        "enrollments: "
        + ", ".join(
            f"{status} {count}" for status, count in sorted(report.enrollments_by_status.items())
        )
        if report.enrollments_by_status
        else "enrollments: none"
    )
    echo(f"lessons completed: {report.lessons_completed}")
    for lesson, count in sorted(report.completed_by_lesson.items()):
        echo(f"  {lesson:<32} {count}")
    for learner in report.learners:
        echo(
            f"  {learner.name or '-':<30} {learner.channel:<9} {learner.status:<11} "
            f"{learner.enrollment_status:<10} {learner.lessons_completed} lessons"
        )


@cohort_group.command("schedule")
@click.argument("cohort")
@click.option("--time-zone", help="A new default IANA zone.")
@_schedule_options
@_acting
def cohort_schedule(
    cohort: str,
    time_zone: str | None,
    as_email: str | None,
    start_date: datetime | None,
    **options: Any,
) -> None:
    """Show or change a cohort's schedule, pacing, start date and zone."""
    settings = _settings()
    courses = _courses(settings)
    changing = (
        time_zone is not None
        or start_date is not None
        or any(value not in (None, ()) for value in options.values())
    )

    async def step(conn: AsyncConnection, user: UserRecord) -> CohortInfo:
        info = await cohort_store.cohort_for(conn, user, cohort)
        if not changing:
            return info
        return await cohort_store.update_schedule(
            conn,
            info,
            schedule=_schedule(info, options),
            courses=courses,
            start_date=_day(start_date),
            time_zone=time_zone,
        )

    info = _run(settings, lambda engine: _in_transaction(engine, as_email, step))
    click.echo(
        f"{info.name}: {info.schedule.describe()}; zone {info.time_zone}; start "
        f"{info.start_date.isoformat() if info.start_date else '-'}"
    )


def _set_status(cohort: str, as_email: str | None, status: str) -> None:
    async def step(conn: AsyncConnection, user: UserRecord) -> tuple[CohortInfo, bool]:
        info = await cohort_store.cohort_for(conn, user, cohort)
        return info, await cohort_store.set_status(conn, info, status)

    info, changed = _run(_settings(), lambda engine: _in_transaction(engine, as_email, step))
    click.echo(f"cohort {info.name} is {status}" + ("" if changed else " (it already was)"))


@cohort_group.command("pause")
@click.argument("cohort")
@_acting
def cohort_pause(cohort: str, as_email: str | None) -> None:
    """Pause a cohort: nothing is planned for it, and nobody can join, until resumed."""
    _set_status(cohort, as_email, "paused")


@cohort_group.command("resume")
@click.argument("cohort")
@_acting
def cohort_resume(cohort: str, as_email: str | None) -> None:
    """Resume a paused cohort."""
    _set_status(cohort, as_email, "active")


@cohort_group.command("import")
@click.argument("cohort")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows, report the others.")
@click.option(
    "--default-region",
    metavar="CC",
    help="Country (e.g. KE) of numbers written without +<country code>.",
)
@_acting
def cohort_import(
    cohort: str, file: Path, skip_invalid: bool, default_region: str | None, as_email: str | None
) -> None:
    """Enrol learners from a CSV: name, phone, channel, locale[, time_zone]."""
    region = default_region.strip().upper() if default_region else None
    parsed = importer.read_csv(file, default_region=region)
    for error in parsed.errors:
        click.echo(str(error), err=True)
    if parsed.errors and not skip_invalid:
        raise click.ClickException(
            f"{len(parsed.bad_lines)} bad rows in {file}: nothing imported "
            "(fix them, or pass --skip-invalid to import the others)"
        )
    settings = _settings()

    async def action(engine: AsyncEngine) -> importer.ImportResult:
        async with engine.begin() as conn:
            info = await cohort_store.cohort_for(conn, await acting_user(conn, as_email), cohort)
        with click.progressbar(length=len(parsed.rows), label="importing", file=None) as bar:
            return await importer.import_learners(engine, info, parsed.rows, on_progress=bar.update)

    result = _run(settings, action)
    skipped = f", {len(parsed.bad_lines)} bad rows skipped" if parsed.errors else ""
    click.echo(
        f"{result.created} learners created, {result.updated} completed, {result.enrolled} "
        f"enrolled, {result.already_enrolled} already enrolled{skipped}"
    )
    click.echo(
        f"time zones: {result.zone_from_phone} from the phone number, "
        f"{result.zone_of_cohort} the cohort's"
    )


@cohort_group.command("push")
@click.argument("cohort", required=False)
@click.argument("lesson", required=False)
@click.option("--at", "at", metavar="'YYYY-MM-DD HH:MM'", help="When, in the cohort's zone.")
@click.option("--no-wait", is_flag=True, help="Return at once instead of showing progress.")
@click.option("--cancel", "cancel_id", type=int, metavar="PUSH_ID", help="Cancel a push.")
@_acting
def cohort_push(
    cohort: str | None,
    lesson: str | None,
    at: str | None,
    no_wait: bool,
    cancel_id: int | None,
    as_email: str | None,
) -> None:
    """Send LESSON to every active learner of COHORT, now or --at a time; Ctrl-C cancels."""
    settings = _settings()
    if cancel_id is not None:
        progress = _run(settings, lambda engine: _cancel(engine, as_email, cancel_id))
        click.echo(_summary(progress))
        return
    if cohort is None or lesson is None:
        raise click.UsageError("give COHORT and LESSON (or --cancel PUSH_ID)")
    courses = _courses(settings)
    created: list[int] = []

    async def action(engine: AsyncEngine) -> push.PushProgress | None:
        async with engine.begin() as conn:
            user = await acting_user(conn, as_email)
            info = await cohort_store.cohort_for(conn, user, cohort)
        lesson_obj = push.find_lesson(info, lesson, courses)
        send_at = push.parse_send_at(at, info.time_zone) if at else None
        try:
            started = await push.start_push(
                engine,
                user=user,
                cohort_id_or_code=str(info.id),
                lesson_id=lesson,
                send_at=send_at,
                courses=courses,
                on_created=created.append,
            )
            cost = push.lesson_cost(lesson_obj, settings)
            _announce(started, cost, settings)
            if no_wait or started.total == 0:
                return None
            return await _watch(engine, started, cost, settings)
        except asyncio.CancelledError:
            # Ctrl-C: asyncio.run cancels us; cancel the push before letting it stop us.
            if created:
                progress = await push.cancel_push(engine, user=user, push_id=created[0])
                click.echo("\n" + _summary(progress), err=True)
            raise

    try:
        final = _run(settings, action)
    except KeyboardInterrupt:
        raise click.Abort() from None
    if final is not None:
        click.echo(_summary(final))


async def _cancel(engine: AsyncEngine, as_email: str | None, push_id: int) -> push.PushProgress:
    async with engine.connect() as conn:
        user = await acting_user(conn, as_email)
    return await push.cancel_push(engine, user=user, push_id=push_id)


def _announce(started: push.PushInfo, cost: push.LessonCost, settings: Settings) -> None:
    channels = ", ".join(f"{n} {channel}" for channel, n in sorted(started.by_channel.items()))
    click.echo(
        f"push {started.id}: {started.lesson_id} to {started.total} learners of "
        f"{started.cohort_name}" + (f" ({channels})" if channels else "")
    )
    if started.skipped:
        click.echo(f"  {started.skipped} active learners already have this lesson: skipped")
    wait = push.until(started.send_at).total_seconds()
    eta = wait + push.estimate_seconds(started.by_channel, cost, settings)
    when = f"at {started.send_at.isoformat(timespec='minutes')}, " if wait > 0 else ""
    click.echo(f"  {when}estimated time to send: {push.format_eta(eta)}")
    click.echo(f"  cancel with: learnbot cohort push --cancel {started.id}")


async def _watch(
    engine: AsyncEngine, started: push.PushInfo, cost: push.LessonCost, settings: Settings
) -> push.PushProgress:
    progress = await push.push_progress(engine, started.id)
    eta = ""

    def show(_: Any) -> str:
        return eta

    with click.progressbar(
        length=progress.total, label=f"push {started.id}", item_show_func=show, show_eta=False
    ) as bar:
        done = 0
        while True:
            finished = progress.sent + progress.failed + progress.cancelled
            eta = "ETA " + push.format_eta(
                push.until(progress.send_at).total_seconds()
                + push.estimate_seconds(progress.pending_by_channel, cost, settings)
            )
            bar.update(finished - done, current_item=finished)
            done = finished
            if progress.finished:
                return progress
            await asyncio.sleep(1.0)
            progress = await push.push_progress(engine, started.id)


def _summary(progress: push.PushProgress) -> str:
    return (
        f"push {progress.id} {progress.status}: {progress.sent}/{progress.total} sent, "
        f"{progress.failed} failed, {progress.pending} pending, {progress.cancelled} cancelled"
    )
