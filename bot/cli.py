"""The `learnbot` command line: the one place that wires every part together."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TextIO

import click

from bot.config import ConfigError, Settings, check_secret_key_for_serving
from bot.trainers.text import CliUi


def load_settings() -> Settings:
    """Read the settings, turning a bad value into a clean CLI error naming the setting."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@contextlib.contextmanager
def _config_errors() -> Iterator[None]:
    """A setting found wrong while starting up is a clean CLI error, not a traceback."""
    try:
        yield
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(package_name="learnbot")
@click.pass_context
def main(ctx: click.Context) -> None:
    """learnbot: translated micro-lessons and quizzes over Telegram, WhatsApp and SMS."""
    if ctx.invoked_subcommand != "serve":  # serve sets up its own logging, at INFO
        _mask_secrets_in_logs()


def _mask_secrets_in_logs() -> None:
    """Warnings of the libraries a command uses go through the secret filter too."""
    import logging

    from bot.redaction import install_secret_filter

    try:
        settings = Settings.from_env()
    except ConfigError:
        return  # the command itself reports the bad setting
    if not logging.getLogger().handlers:
        # Python's last-resort handler would print them, past any filter of ours.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_secret_filter(settings)


def _register_lessons_group() -> None:
    from bot.lessons.commands import lessons

    main.add_command(lessons)


_register_lessons_group()
main.add_command(__import__("bot.telegram_cli", fromlist=["telegram"]).telegram)  # `telegram`
main.add_command(__import__("scheduler.commands", fromlist=["outbox"]).outbox)  # learnbot outbox
main.add_command(__import__("bot.trainers.commands", fromlist=["x"]).cohort_group)  # cohort
main.add_command(__import__("bot.trainers.commands", fromlist=["x"]).user_group)  # user
main.add_command(__import__("bot.trainers.xapi_commands", fromlist=["x"]).xapi_group)  # xapi
# `learnbot outbox pending` speaks the trainer's language and acts as a user, like `cohort`.
main.commands["outbox"].add_command(  # type: ignore[attr-defined]
    __import__("bot.trainers.commands", fromlist=["x"]).outbox_pending
)


@main.command()
@click.option("--host", default=None, help="Address to bind (default LEARNBOT_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (default LEARNBOT_PORT).")
@click.option(
    "--telegram-polling",
    is_flag=True,
    help="Fetch Telegram updates by long polling (a machine without a public URL).",
)
def serve(host: str | None, port: int | None, telegram_polling: bool) -> None:
    """Migrate the database, then serve webhooks, health and the sandbox."""
    from bot.runtime import serve as run_server

    settings = load_settings()
    with _config_errors():
        check_secret_key_for_serving(settings)
    with (
        contextlib.suppress(KeyboardInterrupt),
        _config_errors(),
        # uvloop (from uvicorn[standard]): a faster event loop for the webhooks.
        asyncio.Runner(loop_factory=_fast_loop_factory()) as runner,
    ):
        runner.run(
            run_server(
                settings,
                host=host or settings.host,
                port=port or settings.port,
                telegram_polling=telegram_polling,
                port_setting="--port" if port else "LEARNBOT_PORT",
            )
        )


def _fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    import uvloop

    return uvloop.new_event_loop


@main.command()
@click.option("--locale", default="en", show_default=True, help="The learner's language.")
def demo(locale: str) -> None:
    """Run a scripted learner session on a temporary store and print the transcript."""
    from bot.demo import run_demo
    from bot.i18n import SHIPPED_LOCALES

    if locale not in SHIPPED_LOCALES:
        raise click.BadParameter(
            f"unknown locale {locale!r}; shipped: {', '.join(SHIPPED_LOCALES)}",
            param_hint="--locale",
        )
    settings = load_settings()
    asyncio.run(run_demo(settings, locale=locale, out=sys.stdout))


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration to LEARNBOT_DATABASE_URL."""
    from bot.store.migrate import upgrade

    settings = load_settings()
    check_database_setting(settings)
    upgrade(settings.database_url)
    click.echo("database is up to date")


def check_database_setting(settings: Settings) -> None:
    """A database that cannot be opened or written is one CLI error naming the setting."""
    from bot.runtime import check_startup

    with _config_errors():
        asyncio.run(check_startup(settings))


@main.group()
def export() -> None:
    """Export the completion log."""


@export.command("events")
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
@click.option("--cohort", "cohort_id", type=int, default=None, help="Only this cohort id.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--include-addresses",
    is_flag=True,
    help="Admins only: add raw phone numbers / chat ids next to the pseudonyms.",
)
@click.option(
    "--include-free-text",
    is_flag=True,
    help="Admins only: add the learners' free-text answers (reflections), with pseudonyms.",
)
@click.option(
    "--include-sandbox",
    is_flag=True,
    help="Add the public /sandbox's learners and their events (left out by default).",
)
@click.option(
    "--as",
    "as_email",
    envvar="LEARNBOT_USER",
    metavar="EMAIL",
    help="Act as this trainer (their cohorts only) or admin [default: $LEARNBOT_USER].",
)
def export_events(
    fmt: str,
    since: date | None,
    cohort_id: int | None,
    output: Path | None,
    include_addresses: bool,
    as_email: str | None,
    include_sandbox: bool,
    include_free_text: bool,
) -> None:
    """Stream the event log as CSV, with keyed pseudonyms instead of addresses."""
    from bot.i18n import UiCatalogs
    from bot.trainers.text import TrainerError, cli_ui

    settings = load_settings()
    ui = cli_ui(UiCatalogs(settings.locales_dir), settings.cli_locale)
    since_day = since.date() if since is not None and hasattr(since, "date") else since

    async def run() -> int:
        from bot.analytics.export import export_events_csv
        from bot.store.db import create_engine
        from bot.trainers.cohorts import export_scope
        from bot.trainers.roles import acting_user

        engine = create_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                user = await acting_user(conn, as_email)
                cohort = None if cohort_id is None else str(cohort_id)
                scope = await export_scope(
                    conn,
                    user,
                    cohort,
                    include_addresses=include_addresses,
                    include_free_text=include_free_text,
                )
            with _output(output, ui) as out:
                return await export_events_csv(
                    engine,
                    out,
                    secret_key=settings.secret_key,
                    since=since_day,
                    cohort_ids=scope,
                    include_addresses=include_addresses,
                    include_free_text=include_free_text,
                    include_sandbox=include_sandbox,
                )
        finally:
            await engine.dispose()

    from bot.store.migrate import upgrade

    check_database_setting(settings)
    upgrade(settings.database_url)  # the users and cohorts the export is checked against
    try:
        count = asyncio.run(run())
    except TrainerError as exc:
        raise click.ClickException(ui.render(exc)) from exc
    click.echo(f"{count} events exported", err=True)


@contextlib.contextmanager
def _output(output: Path | None, ui: CliUi) -> Iterator[TextIO]:
    """stdout, or `output` written beside it and renamed: never half a file."""
    if output is None:
        yield sys.stdout
        return
    partial = output.with_name(output.name + ".partial")
    try:
        handle = partial.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise _unwritable(ui, output, exc) from exc
    try:
        with handle:
            yield handle
        partial.replace(output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise _unwritable(ui, output, exc) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _unwritable(ui: CliUi, output: Path, exc: OSError) -> click.ClickException:
    from bot.trainers.text import N_

    return click.ClickException(
        ui.render(
            N_(
                "%(option)s: cannot write %(file)s: %(reason)s",
                option="--output",
                file=str(output),
                reason=exc.strerror or type(exc).__name__,
            )
        )
    )
