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

from bot.config import ConfigError, Settings


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
def main() -> None:
    """learnbot: translated micro-lessons and quizzes over Telegram, WhatsApp and SMS."""


def _register_lessons_group() -> None:
    from bot.lessons.commands import lessons

    main.add_command(lessons)


_register_lessons_group()
main.add_command(__import__("bot.telegram_cli", fromlist=["telegram"]).telegram)  # `telegram`
main.add_command(__import__("scheduler.commands", fromlist=["outbox"]).outbox)  # learnbot outbox
main.add_command(__import__("bot.trainers.commands", fromlist=["x"]).cohort_group)  # cohort
main.add_command(__import__("bot.trainers.commands", fromlist=["x"]).user_group)  # user


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
    upgrade(settings.database_url)
    click.echo("database is up to date")


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
    "--include-sandbox",
    is_flag=True,
    help="Add the public /sandbox's learners and their events (left out by default).",
)
def export_events(
    fmt: str,
    since: date | None,
    cohort_id: int | None,
    output: Path | None,
    include_addresses: bool,
    include_sandbox: bool,
) -> None:
    """Stream the event log as CSV, with keyed pseudonyms instead of addresses."""
    settings = load_settings()
    since_day = since.date() if since is not None and hasattr(since, "date") else since

    async def run(out: TextIO) -> int:
        from bot.analytics.export import export_events_csv
        from bot.store.db import create_engine

        engine = create_engine(settings.database_url)
        try:
            return await export_events_csv(
                engine,
                out,
                secret_key=settings.secret_key,
                since=since_day,
                cohort_id=cohort_id,
                include_addresses=include_addresses,
                include_sandbox=include_sandbox,
            )
        finally:
            await engine.dispose()

    if output is None:
        count = asyncio.run(run(sys.stdout))
    else:
        # Write beside the target, then rename: an interrupted export never leaves half a file.
        partial = output.with_name(output.name + ".partial")
        with partial.open("w", encoding="utf-8", newline="") as handle:
            count = asyncio.run(run(handle))
        partial.replace(output)
    click.echo(f"{count} events exported", err=True)
