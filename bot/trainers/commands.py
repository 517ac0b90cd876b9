"""`learnbot cohort ...` and `learnbot user ...`: what trainers and admins type.

Every cohort command acts as a user named by `--as EMAIL` or the `LEARNBOT_USER`
environment variable: an admin acts on every cohort, a trainer only on their own.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.analytics.pending import PendingGroup, pending_deliveries
from bot.analytics.pseudonym import pseudonym
from bot.channels.configured import configured_channels, needed_settings
from bot.config import ConfigError, Settings
from bot.domain import Role
from bot.i18n import UiCatalogs
from bot.lessons.loader import LessonValidationError, LoadedCourse, load_courses
from bot.store.db import create_engine, utcnow
from bot.trainers import cohorts as cohort_store
from bot.trainers import importer, push
from bot.trainers.cohorts import CohortError, CohortInfo
from bot.trainers.passwords import PasswordError, invite, set_password
from bot.trainers.pending import describe
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
from bot.trainers.text import (
    N_,
    CliUi,
    Text,
    TrainerError,
    cli_ui,
    describe_schedule,
    format_eta,
    status_word,
)
from scheduler.schedule import ScheduleError, schedule_from_options

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
BOT_USERNAME_ENV = "TELEGRAM_BOT_USERNAME"
USER_ERRORS = (
    RoleError,
    CohortError,
    ScheduleError,
    UserInputError,
    push.PushError,
    PasswordError,
)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _setup() -> tuple[Settings, CliUi]:
    """The settings, and the trainer's language (LEARNBOT_CLI_LOCALE, else LANG and friends)."""
    settings = _settings()
    return settings, cli_ui(UiCatalogs(settings.locales_dir), settings.cli_locale)


def _courses(settings: Settings, ui: CliUi) -> dict[str, LoadedCourse]:
    try:
        return load_courses(settings.lessons_dir)
    except LessonValidationError as exc:
        # The issues name files and fields of the course data: they stay as the loader says.
        raise click.ClickException(
            ui.gettext("invalid course files:") + "\n" + "\n".join(map(str, exc.issues))
        ) from exc


def _error(ui: CliUi, exc: Exception) -> click.ClickException:
    return click.ClickException(ui.render(exc) if isinstance(exc, TrainerError) else str(exc))


def _run(settings: Settings, ui: CliUi, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Migrate, open an engine, run `action`, close; user errors become clean CLI errors."""
    from bot.config import DEFAULT_DATABASE_URL
    from bot.store.migrate import upgrade
    from bot.store.preflight import DatabaseCheckError, check_database

    try:  # a refused or read-only database: one line naming the setting, not a traceback
        asyncio.run(
            check_database(
                settings.database_url,
                create_folder=settings.database_url == DEFAULT_DATABASE_URL,
            )
        )
    except DatabaseCheckError as exc:
        raise click.ClickException(str(exc)) from exc
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
        raise _error(ui, exc) from exc


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

    settings, ui = _setup()

    async def action(engine: AsyncEngine) -> UserRecord:
        async with engine.begin() as conn:
            if await has_admin(conn):
                require_admin(await acting_user(conn, as_email), N_("add users"))
            elif role != Role.ADMIN.value:
                raise RoleError(
                    N_("there is no admin yet: add an admin first (%(option)s)"),
                    option="--role admin",
                )
            return await add_user(
                conn,
                name=name,
                email=email,
                role=Role(role),
                telegram_chat_id=telegram_chat_id,
                phone=phone,
            )

    user = _run(settings, ui, action)
    role_word = status_word(ui, "role", user.role.value)
    click.echo(
        ui.gettext(
            "user %(id)s: %(user)s (%(role)s)", id=str(user.id), user=user.label(), role=role_word
        )
    )


@user_group.command("list")
def user_list() -> None:
    """List trainers and admins."""

    settings, ui = _setup()

    async def action(engine: AsyncEngine) -> list[UserRecord]:
        async with engine.connect() as conn:
            return await list_users(conn)

    users = _run(settings, ui, action)
    roles = {user.id: status_word(ui, "role", user.role.value) for user in users}
    width = max((len(role) for role in roles.values()), default=0)
    for user in users:
        extra = ""
        if user.telegram_chat_id:
            extra += "  " + ui.gettext("telegram %(chat)s", chat=user.telegram_chat_id)
        if user.phone:
            extra += "  " + ui.gettext("phone %(phone)s", phone=user.phone)
        click.echo(f"{user.id:>4}  {roles[user.id]:<{max(width, 7)}}  {user.label()}{extra}")


def _read_password(ui: CliUi) -> str:
    """The new password: typed twice on a terminal (not echoed), else the first line of stdin."""
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(ui.gettext("New password: "))
    if getpass.getpass(ui.gettext("The same password again: ")) != first:
        raise click.ClickException(ui.gettext("PASSWORD: the two passwords differ"))
    return first


# Who may run these: whoever may run the CLI against the database (it holds the hashes anyway).
@user_group.command("set-password")
@click.argument("email")
def user_set_password(email: str) -> None:
    """Set the console password of the user with EMAIL (asked twice, or read from stdin)."""
    settings, ui = _setup()
    password = _read_password(ui)

    async def action(engine: AsyncEngine) -> UserRecord:
        async with engine.begin() as conn:
            return await set_password(conn, email, password)

    user = _run(settings, ui, action)
    click.echo(ui.gettext("%(user)s can now sign in to the console", user=user.label()))


@user_group.command("invite")
@click.argument("email")
def user_invite(email: str) -> None:
    """Print a one-time console sign-in link for the user with EMAIL, valid 72 hours."""
    settings, ui = _setup()

    async def action(engine: AsyncEngine) -> Any:
        async with engine.begin() as conn:
            return await invite(conn, email, settings.public_url)

    invitation = _run(settings, ui, action)
    click.echo(invitation.link)
    click.echo(
        ui.gettext(
            "for %(user)s, once, until %(time)s",
            user=invitation.user.label(),
            time=ui.datetime(invitation.expires_at, "UTC"),
        ),
        err=True,
    )


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
@click.option(
    "--sandbox",
    "open_to_sandbox",
    is_flag=True,
    help="Let visitors of the public /sandbox join it (to try a course out).",
)
@click.option(
    "--name-in",
    "names_in",
    nargs=2,
    multiple=True,
    metavar="LOCALE NAME",
    help='The name learners read in a locale (e.g. --name-in ar "..."); repeat per locale.',
)
@_schedule_options
@_bot_username
@_acting
def cohort_create(
    name: str,
    course_ids: tuple[str, ...],
    time_zone: str,
    owner_email: str | None,
    open_to_sandbox: bool,
    names_in: tuple[tuple[str, str], ...],
    bot_username: str | None,
    as_email: str | None,
    start_date: datetime | None,
    **schedule: Any,
) -> None:
    """Create a cohort with a new join code."""
    settings, ui = _setup()
    courses = _courses(settings, ui)
    plan = _schedule(ui, None, schedule)
    locales = _locales(settings)

    async def step(conn: AsyncConnection, user: UserRecord) -> CohortInfo:
        names = cohort_store.check_name_in(names_in, locales)
        owner = None
        if owner_email is not None:
            owner = await user_by_email(conn, owner_email)
            if owner is None:
                raise RoleError(
                    N_("--owner: no user has the e-mail %(email)s"), email=repr(owner_email)
                )
        return await cohort_store.create_cohort(
            conn,
            owner=cohort_store.owner_check(user, owner),
            name=name,
            course_ids=course_ids,
            courses=courses,
            time_zone=time_zone,
            schedule=plan,
            start_date=_day(start_date),
            open_to_sandbox=open_to_sandbox,
            names=names,
        )

    cohort = _run(settings, ui, lambda engine: _in_transaction(engine, as_email, step))
    click.echo(ui.gettext("cohort %(id)s created: %(name)s", id=str(cohort.id), name=cohort.name))
    for locale, localized in cohort.names.items():
        click.echo(ui.gettext("name in %(locale)s: %(name)s", locale=locale, name=localized))
    click.echo(ui.gettext("join code: %(code)s", code=cohort.join_code))
    if cohort.open_to_sandbox:
        click.echo(ui.gettext("open to the sandbox: visitors of /sandbox can join it"))
    link = cohort.deep_link(bot_username)
    click.echo(
        ui.gettext("telegram link: %(link)s", link=link)
        if link
        else ui.gettext(
            "telegram link: set %(variable)s or %(option)s to get one",
            variable=BOT_USERNAME_ENV,
            option="--telegram-bot-username",
        )
    )


def _locales(settings: Settings) -> tuple[str, ...]:
    """The locales the bot speaks: a cohort may have a name in each."""
    return UiCatalogs(settings.locales_dir).available_locales()


def _names_line(ui: CliUi, info: CohortInfo) -> str:
    if not info.names:
        return ui.gettext("- (every learner reads %(name)s)", name=info.name)
    return ui.join(
        f"{ui.fragment(locale)} {ui.fragment(name)}" for locale, name in info.names.items()
    )


def _schedule(ui: CliUi, cohort: CohortInfo | None, options: Mapping[str, Any]) -> Any:
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
        # scheduler.schedule's own words (each names its option); the heading is ours.
        raise click.ClickException(ui.gettext("invalid schedule:") + "\n" + str(exc)) from exc


@cohort_group.command("list")
@_acting
def cohort_list(as_email: str | None) -> None:
    """List the cohorts you may act on (admins: all)."""

    async def step(conn: AsyncConnection, user: UserRecord) -> list[tuple[CohortInfo, int]]:
        return await cohort_store.list_cohorts(conn, user)

    settings, ui = _setup()
    rows = _run(settings, ui, lambda engine: _in_transaction(engine, as_email, step))
    if not rows:
        click.echo(ui.gettext("no cohorts"))
    statuses = [status_word(ui, "cohort", cohort.status) for cohort, _ in rows]
    width = max((len(status) for status in statuses), default=0)
    for (cohort, learners), status in zip(rows, statuses, strict=True):
        count = ui.ngettext("%(count)s learner", "%(count)s learners", learners, count=learners)
        owner = ui.gettext("owner %(name)s", name=cohort.owner_name or "-")
        click.echo(
            f"{cohort.id:>4}  {cohort.join_code}  {status:<{max(width, 6)}}  {count:>15}  "
            f"{cohort.name}  [{', '.join(cohort.course_ids)}]  {owner}"
        )


@cohort_group.command("show")
@click.argument("cohort")
@click.option("--learners", "with_learners", is_flag=True, help="List every learner too.")
@click.option(
    "--include-sandbox",
    is_flag=True,
    help="Count the public /sandbox's visitors too (left out by default).",
)
@_bot_username
@_acting
def cohort_show(
    cohort: str,
    with_learners: bool,
    include_sandbox: bool,
    bot_username: str | None,
    as_email: str | None,
) -> None:
    """Show a cohort, its learners by status, and their progress."""

    async def step(
        conn: AsyncConnection, user: UserRecord
    ) -> tuple[CohortInfo, cohort_store.CohortReport]:
        info = await cohort_store.cohort_for(conn, user, cohort)
        report = await cohort_store.cohort_report(
            conn,
            info,
            with_learners=with_learners,
            include_sandbox=include_sandbox,
            courses=courses,
        )
        return info, report

    settings, ui = _setup()
    courses = _courses(settings, ui)  # which lessons teach, and which measure
    info, report = _run(settings, ui, lambda engine: _in_transaction(engine, as_email, step))
    echo = click.echo
    echo(
        ui.gettext(
            "cohort %(id)s: %(name)s (%(status)s)",
            id=str(info.id),
            name=info.name,
            status=status_word(ui, "cohort", info.status),
        )
    )
    link = info.deep_link(bot_username)
    fields = [
        (ui.gettext("owner:"), ui.fragment(info.owner_name or "-")),
        (ui.gettext("courses:"), ui.fragment(" -> ".join(info.course_ids))),
        (ui.gettext("join code:"), ui.fragment(info.join_code)),
        (ui.gettext("names:"), _names_line(ui, info)),
        (ui.gettext("link:"), ui.fragment(link) if link else ui.gettext("- (no bot username)")),
        (ui.gettext("time zone:"), ui.fragment(info.time_zone)),
        (ui.gettext("start:"), ui.date(info.start_date)),
        (ui.gettext("schedule:"), describe_schedule(ui, info.schedule)),
        (
            ui.gettext("sandbox:"),
            ui.gettext("open (visitors of /sandbox can join)")
            if info.open_to_sandbox
            else ui.gettext("closed (/sandbox cannot join)"),
        ),
    ]
    width = max(len(label) for label, _ in fields) + 1
    for label, value in fields:
        echo(f"  {label:<{width}} {value}")
    echo(ui.gettext("learners: %(count)s", count=report.total_learners))
    for status, count in sorted(report.learners_by_status.items()):
        echo(f"  {status_word(ui, 'learner', status):<12} {ui.number(count)}")
    echo(
        ui.gettext(
            "enrollments: %(counts)s",
            counts=ui.join(
                f"{status_word(ui, 'enrollment', status)} {ui.number(count)}"
                for status, count in sorted(report.enrollments_by_status.items())
            ),
        )
        if report.enrollments_by_status
        else ui.gettext("enrollments: none")
    )
    echo(ui.gettext("lessons completed: %(count)s", count=report.lessons_completed))
    for lesson, count in sorted(report.completed_by_lesson.items()):
        echo(f"  {ui.fragment(lesson):<32} {ui.number(count)}")
    for learner in report.learners:
        done = learner.lessons_completed
        echo(
            f"  {learner.name or '-':<30} {learner.channel:<9} "
            f"{status_word(ui, 'learner', learner.status):<11} "
            f"{status_word(ui, 'enrollment', learner.enrollment_status):<10} "
            + ui.ngettext("%(count)s lesson", "%(count)s lessons", done, count=done)
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
    settings, ui = _setup()
    courses = _courses(settings, ui)
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
            schedule=_schedule(ui, info, options),
            courses=courses,
            start_date=_day(start_date),
            time_zone=time_zone,
        )

    info = _run(settings, ui, lambda engine: _in_transaction(engine, as_email, step))
    click.echo(
        ui.gettext(
            "%(cohort)s: %(schedule)s; zone %(zone)s; start %(start)s",
            cohort=info.name,
            schedule=describe_schedule(ui, info.schedule),
            zone=info.time_zone,
            start=ui.date(info.start_date),
        )
    )


@cohort_group.command("name")
@click.argument("cohort")
@click.argument("locale", required=False)
@click.argument("name", required=False)
@click.option("--remove", is_flag=True, help="Remove the name in LOCALE (learners read NAME).")
@_acting
def cohort_name(
    cohort: str, locale: str | None, name: str | None, remove: bool, as_email: str | None
) -> None:
    """Show a cohort's names, or set (remove) the name learners read in LOCALE."""
    settings, ui = _setup()
    locales = _locales(settings)
    if locale is None and remove:
        raise click.UsageError(ui.gettext("--remove: say which LOCALE"))
    if locale is not None and (name is None) != remove:
        raise click.UsageError(
            ui.gettext("give NAME to set the name in %(locale)s, or --remove", locale=locale)
        )

    async def step(conn: AsyncConnection, user: UserRecord) -> tuple[CohortInfo, bool]:
        info = await cohort_store.cohort_for(conn, user, cohort)
        if locale is None:
            return info, False
        return await cohort_store.set_name_in(conn, info, locale=locale, name=name, locales=locales)

    info, changed = _run(settings, ui, lambda engine: _in_transaction(engine, as_email, step))
    if locale is None:
        click.echo(
            ui.gettext(
                "cohort %(cohort)s: %(names)s", cohort=info.name, names=_names_line(ui, info)
            )
        )
        return
    key = cohort_store.check_locale(locale, locales, "LOCALE")
    values = {"cohort": info.name, "locale": key}
    if not remove:
        named = {"name": info.names[key], **values}
        click.echo(
            ui.gettext("cohort %(cohort)s is named %(name)s in %(locale)s", **named)
            if changed
            else ui.gettext(
                "cohort %(cohort)s is named %(name)s in %(locale)s (it already was)", **named
            )
        )
    elif changed:
        click.echo(
            ui.gettext(
                "cohort %(cohort)s: no name of its own in %(locale)s now; learners read %(name)s",
                name=info.name,
                **values,
            )
        )
    else:
        click.echo(ui.gettext("cohort %(cohort)s had no name of its own in %(locale)s", **values))


def _set_status(cohort: str, as_email: str | None, status: str) -> None:
    async def step(conn: AsyncConnection, user: UserRecord) -> tuple[CohortInfo, bool]:
        info = await cohort_store.cohort_for(conn, user, cohort)
        return info, await cohort_store.set_status(conn, info, status)

    settings, ui = _setup()
    info, changed = _run(settings, ui, lambda engine: _in_transaction(engine, as_email, step))
    values = {"cohort": info.name, "status": status_word(ui, "cohort", status)}
    click.echo(
        ui.gettext("cohort %(cohort)s is %(status)s", **values)
        if changed
        else ui.gettext("cohort %(cohort)s is %(status)s (it already was)", **values)
    )


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


@cohort_group.command("sandbox")
@click.argument("cohort")
@click.argument("state", type=click.Choice(["on", "off"]))
@_acting
def cohort_sandbox(cohort: str, state: str, as_email: str | None) -> None:
    """Open (on) or close (off) a cohort to visitors of the public /sandbox."""
    value = state == "on"

    async def step(conn: AsyncConnection, user: UserRecord) -> tuple[CohortInfo, bool]:
        info = await cohort_store.cohort_for(conn, user, cohort)
        return info, await cohort_store.set_open_to_sandbox(conn, info, value)

    settings, ui = _setup()
    info, changed = _run(settings, ui, lambda engine: _in_transaction(engine, as_email, step))
    if value:
        message = (
            ui.gettext("cohort %(cohort)s is open to the sandbox", cohort=info.name)
            if changed
            else ui.gettext(
                "cohort %(cohort)s is open to the sandbox (it already was)", cohort=info.name
            )
        )
    else:
        message = (
            ui.gettext("cohort %(cohort)s is closed to the sandbox", cohort=info.name)
            if changed
            else ui.gettext(
                "cohort %(cohort)s is closed to the sandbox (it already was)", cohort=info.name
            )
        )
    click.echo(message)


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
    settings, ui = _setup()
    region = default_region.strip().upper() if default_region else None
    parsed = importer.read_csv(file, default_region=region)
    for error in parsed.errors:
        click.echo(error.render(ui), err=True)
    bad = len(parsed.bad_lines)
    if parsed.errors and not skip_invalid:
        raise click.ClickException(
            ui.ngettext(
                "%(count)s bad row in %(file)s: nothing imported "
                "(fix it, or pass %(option)s to import the others)",
                "%(count)s bad rows in %(file)s: nothing imported "
                "(fix them, or pass %(option)s to import the others)",
                bad,
                count=bad,
                file=str(file),
                option="--skip-invalid",
            )
        )

    async def action(engine: AsyncEngine) -> importer.ImportResult:
        async with engine.begin() as conn:
            info = await cohort_store.cohort_for(conn, await acting_user(conn, as_email), cohort)
        label = ui.gettext("importing")
        with click.progressbar(length=len(parsed.rows), label=label, file=None) as bar:
            return await importer.import_learners(engine, info, parsed.rows, on_progress=bar.update)

    result = _run(settings, ui, action)
    counts = [
        ui.ngettext(
            "%(count)s learner created",
            "%(count)s learners created",
            result.created,
            count=result.created,
        ),
        ui.ngettext(
            "%(count)s completed", "%(count)s completed", result.updated, count=result.updated
        ),
        ui.ngettext(
            "%(count)s enrolled", "%(count)s enrolled", result.enrolled, count=result.enrolled
        ),
        ui.ngettext(
            "%(count)s already enrolled",
            "%(count)s already enrolled",
            result.already_enrolled,
            count=result.already_enrolled,
        ),
    ]
    if parsed.errors:
        counts.append(
            ui.ngettext("%(count)s bad row skipped", "%(count)s bad rows skipped", bad, count=bad)
        )
    click.echo(ui.join(counts))
    click.echo(
        ui.gettext(
            "time zones: %(phone)s from the phone number, %(cohort)s the cohort's",
            phone=result.zone_from_phone,
            cohort=result.zone_of_cohort,
        )
    )


@cohort_group.command("push")
@click.argument("cohort", required=False)
@click.argument("lesson", required=False)
@click.option("--at", "at", metavar="'YYYY-MM-DD HH:MM'", help="When, in the cohort's zone.")
@click.option("--no-wait", is_flag=True, help="Return at once instead of showing progress.")
@click.option("--cancel", "cancel_id", type=int, metavar="PUSH_ID", help="Cancel a push.")
@click.option(
    "--status", "status_id", type=int, metavar="PUSH_ID", help="Where a push stands, and why."
)
@_acting
def cohort_push(
    cohort: str | None,
    lesson: str | None,
    at: str | None,
    no_wait: bool,
    cancel_id: int | None,
    status_id: int | None,
    as_email: str | None,
) -> None:
    """Send LESSON to every active learner of COHORT, now or --at a time; Ctrl-C cancels."""
    settings, ui = _setup()
    if cancel_id is not None:
        progress = _run(settings, ui, lambda engine: _cancel(engine, as_email, cancel_id))
        click.echo(_summary(ui, progress))
        return
    if status_id is not None:
        progress, groups = _run(
            settings, ui, lambda engine: _status(engine, as_email, status_id, settings)
        )
        click.echo(_summary(ui, progress))
        for line in describe(ui, groups, utcnow(), settings, indent="  "):
            click.echo(line)
        return
    if cohort is None or lesson is None:
        raise click.UsageError(
            ui.gettext(
                "give %(cohort)s and %(lesson)s (or %(option)s)",
                cohort="COHORT",
                lesson="LESSON",
                option="--cancel PUSH_ID",
            )
        )
    courses = _courses(settings, ui)
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
                channels=[str(channel) for channel in configured_channels(settings)],
            )
            cost = push.lesson_cost(lesson_obj, settings)
            _announce(ui, started, info.time_zone, cost, settings)
            if no_wait or started.total == 0:
                return None
            return await _watch(ui, engine, started, cost, settings)
        except asyncio.CancelledError:
            # Ctrl-C: asyncio.run cancels us; cancel the push before letting it stop us.
            if created:
                progress = await push.cancel_push(engine, user=user, push_id=created[0])
                click.echo("\n" + _summary(ui, progress), err=True)
            raise

    try:
        final = _run(settings, ui, action)
    except KeyboardInterrupt:
        raise click.Abort() from None
    if final is not None:
        click.echo(_summary(ui, final))


async def _cancel(engine: AsyncEngine, as_email: str | None, push_id: int) -> push.PushProgress:
    async with engine.connect() as conn:
        user = await acting_user(conn, as_email)
    return await push.cancel_push(engine, user=user, push_id=push_id)


async def _status(
    engine: AsyncEngine, as_email: str | None, push_id: int, settings: Settings
) -> tuple[push.PushProgress, list[PendingGroup]]:
    async with engine.connect() as conn:
        user = await acting_user(conn, as_email)
        await push.push_cohort(conn, user, push_id)
    progress = await push.push_progress(engine, push_id)
    return progress, await _waiting(engine, settings, push_id=push_id)


async def _waiting(
    engine: AsyncEngine,
    settings: Settings,
    *,
    push_id: int | None = None,
    cohort_ids: list[int] | None = None,
) -> list[PendingGroup]:
    async with engine.connect() as conn:
        return await pending_deliveries(
            conn,
            secret_key=settings.secret_key,
            configured=[str(channel) for channel in configured_channels(settings)],
            now=utcnow(),
            cohort_ids=cohort_ids,
            push_id=push_id,
        )


# How many unreachable learners a push names per channel; the rest are counted.
NAMED_UNREACHABLE = 5


def _announce(
    ui: CliUi, started: push.PushInfo, time_zone: str, cost: push.LessonCost, settings: Settings
) -> None:
    channels = ui.join(
        f"{ui.number(n)} {channel}" for channel, n in sorted(started.by_channel.items())
    )
    values: dict[str, str | int | Text] = {
        "id": str(started.id),  # an id, not a quantity: no grouping
        "lesson": started.lesson_id,
        "total": started.total,
        "cohort": started.cohort_name,
    }
    if channels:
        line = ui.ngettext(
            "push %(id)s: %(lesson)s to %(total)s learner of %(cohort)s (%(channels)s)",
            "push %(id)s: %(lesson)s to %(total)s learners of %(cohort)s (%(channels)s)",
            started.total,
            channels=channels,
            **values,
        )
    else:
        line = ui.ngettext(
            "push %(id)s: %(lesson)s to %(total)s learner of %(cohort)s",
            "push %(id)s: %(lesson)s to %(total)s learners of %(cohort)s",
            started.total,
            **values,
        )
    click.echo(line)
    _announce_unreachable(ui, started, settings)
    if started.skipped:
        click.echo(
            "  "
            + ui.ngettext(
                "%(count)s active learner already has this lesson: skipped",
                "%(count)s active learners already have this lesson: skipped",
                started.skipped,
                count=started.skipped,
            )
        )
    if not started.total:
        return
    wait = push.until(started.send_at).total_seconds()
    eta = format_eta(ui, wait + push.estimate_seconds(started.by_channel, cost, settings))
    click.echo(
        "  "
        + (
            ui.gettext(
                "at %(time)s, estimated time to send: %(eta)s",
                time=ui.datetime(started.send_at, time_zone),
                eta=eta,
            )
            if wait > 0
            else ui.gettext("estimated time to send: %(eta)s", eta=eta)
        )
    )
    command = f"learnbot cohort push --cancel {started.id}"
    click.echo("  " + ui.gettext("cancel with: %(command)s", command=command))


def _announce_unreachable(ui: CliUi, started: push.PushInfo, settings: Settings) -> None:
    """Learners on channels not configured: named at once, not queued, not waited for."""
    for channel, found in sorted(started.unreachable_by_channel().items()):
        n = len(found)
        click.echo(
            "  "
            + ui.ngettext(
                "%(count)s learner on %(channel)s cannot be reached: the channel is not "
                "configured (set %(settings)s); not queued",
                "%(count)s learners on %(channel)s cannot be reached: the channel is not "
                "configured (set %(settings)s); not queued",
                n,
                count=n,
                channel=channel,
                settings=needed_settings(channel) or "-",
            )
        )
        names = [
            ui.fragment(learner.name or pseudonym(settings.secret_key, learner.learner_key))
            for learner in found[:NAMED_UNREACHABLE]
        ]
        if n > NAMED_UNREACHABLE:
            hidden = n - NAMED_UNREACHABLE
            names.append(
                ui.ngettext("and %(count)s more", "and %(count)s more", hidden, count=hidden)
            )
        click.echo("    " + ui.join(names))


# The watch: how often it reads the store, how often a plain (non-terminal) output gets a
# line, and how long nothing may move while lessons are due before it says why.
POLL_SECONDS = 1.0
LINE_EVERY_SECONDS = 5.0
STALL_SECONDS = 20.0


async def _watch(
    ui: CliUi,
    engine: AsyncEngine,
    started: push.PushInfo,
    cost: push.LessonCost,
    settings: Settings,
) -> push.PushProgress:
    """Progress until nothing is left to send: one live line on a terminal, else a line
    every few seconds; if nothing moves while lessons are due, what they wait for."""
    tty = sys.stdout.isatty()
    clock = asyncio.get_running_loop().time
    moved_at = shown_at = clock()
    last_counts: tuple[int, ...] | None = None
    last_line = ""
    explained = False
    while True:
        progress = await push.push_progress(engine, started.id)
        counts = (progress.sent, progress.failed, progress.cancelled, progress.held)
        if counts != last_counts:
            moved_at, last_counts, explained = clock(), counts, False
        if progress.finished:
            if tty:
                click.echo("\r\x1b[K", nl=False)
            return progress
        remaining = push.until(progress.send_at).total_seconds() + push.estimate_seconds(
            progress.pending_by_channel, cost, settings
        )
        line = f"{_summary(ui, progress)}  " + ui.gettext(
            "ETA %(eta)s", eta=format_eta(ui, remaining)
        )
        if tty:
            click.echo("\r" + line + "\x1b[K", nl=False)
        elif line != last_line and (not last_line or clock() - shown_at >= LINE_EVERY_SECONDS):
            click.echo(line)
            last_line, shown_at = line, clock()
        still = clock() - moved_at
        if progress.due and not explained and still >= STALL_SECONDS:
            explained = True
            if tty:
                click.echo()
            click.echo(
                ui.gettext(
                    "nothing sent for %(time)s; what the push waits for:",
                    time=format_eta(ui, still),
                )
            )
            groups = await _waiting(engine, settings, push_id=started.id)
            for text in describe(ui, groups, utcnow(), settings, indent="  "):
                click.echo(text)
            click.echo(
                "  "
                + ui.gettext(
                    "is %(command)s running? Ctrl-C cancels the push.", command="learnbot serve"
                )
            )
        await asyncio.sleep(POLL_SECONDS)


# --- outbox pending --------------------------------------------------------------------------

EXAMPLE_ROWS = 5


@click.command("pending")
@click.option("--cohort", metavar="COHORT", help="Only this cohort (id or join code).")
@click.option("--push", "push_id", type=int, metavar="PUSH_ID", help="Only this push.")
@click.option("--all", "everything", is_flag=True, help="List every delivery, not 5 per reason.")
@_acting
def outbox_pending(
    cohort: str | None, push_id: int | None, everything: bool, as_email: str | None
) -> None:
    """What waits in the outbox, by channel and reason (learners by pseudonym)."""
    settings, ui = _setup()

    async def action(engine: AsyncEngine) -> list[PendingGroup]:
        async with engine.connect() as conn:
            user = await acting_user(conn, as_email)
            ids: list[int] | None = None
            if cohort is not None:
                ids = [(await cohort_store.cohort_for(conn, user, cohort)).id]
            if push_id is not None:
                ids = [*(ids or []), await push.push_cohort(conn, user, push_id)]
            elif ids is None and not user.is_admin:
                ids = [info.id for info, _ in await cohort_store.list_cohorts(conn, user)]
        return await _waiting(engine, settings, push_id=push_id, cohort_ids=ids)

    groups = _run(settings, ui, action)
    if not groups:
        click.echo(ui.gettext("nothing waits in the outbox"))
        return
    rows = max(group.count for group in groups) if everything else EXAMPLE_ROWS
    for line in describe(ui, groups, utcnow(), settings, rows=rows):
        click.echo(line)


def _summary(ui: CliUi, progress: push.PushProgress) -> str:
    counts = [
        ui.ngettext(
            "%(sent)s/%(total)s sent",
            "%(sent)s/%(total)s sent",
            progress.sent,
            sent=progress.sent,
            total=progress.total,
        ),
        ui.ngettext("%(count)s failed", "%(count)s failed", progress.failed, count=progress.failed),
        ui.ngettext(
            "%(count)s pending", "%(count)s pending", progress.pending, count=progress.pending
        ),
        ui.ngettext(
            "%(count)s cancelled",
            "%(count)s cancelled",
            progress.cancelled,
            count=progress.cancelled,
        ),
    ]
    if progress.held:
        counts.append(
            ui.ngettext(
                "%(count)s waiting for a WhatsApp reply",
                "%(count)s waiting for a WhatsApp reply",
                progress.held,
                count=progress.held,
            )
        )
    return ui.gettext(
        "push %(id)s %(status)s: %(counts)s",
        id=str(progress.id),
        status=status_word(ui, "push", progress.status),
        counts=ui.join(counts),
    )
