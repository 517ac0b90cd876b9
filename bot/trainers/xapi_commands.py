"""`learnbot xapi status|backfill|send`: how far the LRS is behind, sending again, a dry run."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.xapi.log import (
    CURSOR,
    ForwardingStatus,
    assessment_scores,
    event_id_before,
    events_after,
    forwarding_status,
)
from bot.analytics.xapi.statements import StatementMapper, UnmappableEvent
from bot.domain import EventType
from bot.lessons.loader import LoadedCourse
from bot.store import xapi_state
from bot.store.db import utcnow
from bot.trainers.commands import _acting, _courses, _run, _setup
from bot.trainers.roles import acting_user, require_admin
from bot.trainers.text import N_, CliUi

DRY_RUN_LIMIT = 1000


@click.group("xapi")
def xapi_group() -> None:
    """The xAPI forwarder: statements to the training unit's Learning Record Store."""


@xapi_group.command("status")
def status_command() -> None:
    """The lag (events and seconds), the last error, and the parked statements."""
    settings, ui = _setup()

    async def action(engine: AsyncEngine) -> ForwardingStatus:
        async with engine.connect() as conn:
            return await forwarding_status(conn)

    status = _run(settings, ui, action)
    if settings.xapi_endpoint is None:
        click.echo(ui.gettext("forwarding is off: LEARNBOT_XAPI_ENDPOINT is not set"))
    else:
        click.echo(ui.gettext("forwarding to %(endpoint)s", endpoint=settings.xapi_endpoint))
    for line in describe_status(ui, status, utcnow()):
        click.echo(line)


def describe_status(ui: CliUi, status: ForwardingStatus, now: datetime) -> list[str]:
    """The lines of `learnbot xapi status`, in the trainer's language."""
    lines: list[str] = [
        ui.gettext(
            "sent up to event %(last)s of %(newest)s",
            last=ui.number(status.last_event_id),
            newest=ui.number(status.newest_event_id),
        ),
        ui.ngettext(
            "lag: %(count)s event, %(seconds)s s",
            "lag: %(count)s events, %(seconds)s s",
            status.lag_events,
            count=ui.number(status.lag_events),
            seconds=ui.number(round(status.lag_seconds(now))),
        ),
    ]
    if status.last_sent_at is None:
        lines.append(ui.gettext("nothing sent yet"))
    else:
        lines.append(
            ui.gettext("last sent: %(when)s", when=ui.datetime(status.last_sent_at, "UTC"))
        )
    if status.last_error and status.last_error_at is not None:
        lines.append(
            ui.gettext(
                "last error (%(when)s): %(error)s",
                when=ui.datetime(status.last_error_at, "UTC"),
                error=ui.fragment(status.last_error),
            )
        )
    if status.holder and status.lease_until is not None and status.lease_until > now:
        lines.append(
            ui.gettext(
                "forwarding now: %(process)s, lease until %(until)s",
                process=ui.fragment(status.holder),
                until=ui.datetime(status.lease_until, "UTC"),
            )
        )
    count = len(status.parked)
    lines.append(
        ui.ngettext(
            "%(count)s statement parked (the LRS refused it)",
            "%(count)s statements parked (the LRS refused them)",
            count,
            count=ui.number(count),
        )
    )
    for parked in status.parked:
        lines.append(
            ui.gettext(
                "  event %(event)s, statement %(statement)s: %(reason)s",
                event=ui.number(parked.event_id),
                statement=ui.fragment(parked.statement_id),
                reason=ui.fragment(parked.reason or parked.status_code),
            )
        )
    return lines


@xapi_group.command("backfill")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Send again the events from this day on (default: the whole log).",
)
@_acting
def backfill_command(since: datetime | None, as_email: str | None) -> None:
    """Send the event log again from a day on; the LRS stores nothing twice (admins only)."""
    settings, ui = _setup()

    async def action(engine: AsyncEngine) -> tuple[int, int]:
        async with engine.begin() as conn:
            require_admin(await acting_user(conn, as_email), N_("backfill the LRS"))
            after = 0 if since is None else await event_id_before(conn, since.replace(tzinfo=UTC))
            await xapi_state.ensure_cursor(conn, CURSOR)
            await xapi_state.rewind(conn, CURSOR, after)
            status = await forwarding_status(conn)
        return after, status.lag_events

    after, count = _run(settings, ui, action)
    click.echo(
        ui.ngettext(
            "%(count)s event will be sent again, from event %(first)s on",
            "%(count)s events will be sent again, from event %(first)s on",
            count,
            count=ui.number(count),
            first=ui.number(after + 1),
        )
    )
    if settings.xapi_endpoint is None:
        click.echo(ui.gettext("forwarding is off: LEARNBOT_XAPI_ENDPOINT is not set"))


@xapi_group.command("send")
@click.option("--dry-run", is_flag=True, help="Print the statements; send nothing.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=DRY_RUN_LIMIT, show_default=True)
@_acting
def send_command(dry_run: bool, limit: int, as_email: str | None) -> None:
    """Print (--dry-run) the statements the forwarder would send next, one JSON per line."""
    settings, ui = _setup()
    if not dry_run:
        raise click.UsageError(
            ui.gettext("`learnbot serve` sends the statements; use --dry-run to see them")
        )
    courses = _courses(settings, ui)
    mapper = StatementMapper(settings.public_url, settings.secret_key, courses)

    async def action(engine: AsyncEngine) -> list[str]:
        async with engine.connect() as conn:
            require_admin(await acting_user(conn, as_email), N_("read the xAPI statements"))
            status = await forwarding_status(conn)
            rows = await events_after(conn, status.last_event_id, limit)
            done = [r for r in rows if r.type == EventType.LESSON_COMPLETED.value]
            scores = await assessment_scores(
                conn, [r for r in done if _assessment(courses, r.course_id, r.lesson_id)]
            )
        lines: list[str] = []
        for row in rows:
            try:
                statement = mapper.statement(row, scores.get(row.id))
            except UnmappableEvent as exc:
                lines.append(
                    ui.gettext("event %(event)s: %(reason)s", event=row.id, reason=str(exc))
                )
                continue
            lines.append(json.dumps(statement, ensure_ascii=False, sort_keys=True))
        return lines

    lines = _run(settings, ui, action)
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo(ui.gettext("nothing to send: the LRS has every event"), err=True)


def _assessment(
    courses: dict[str, LoadedCourse], course_id: str | None, lesson: str | None
) -> bool:
    loaded = courses.get(course_id or "")
    return loaded is not None and lesson in loaded.assessments()
