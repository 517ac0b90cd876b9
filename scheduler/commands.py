"""`learnbot outbox failed|requeue`: the dead letters, and sending them again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import click
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.pseudonym import pseudonym
from bot.domain import DeliveryStatus
from bot.store.db import create_engine, utcnow
from bot.store.tables import deliveries, learners

DEAD = DeliveryStatus.DEAD.value


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that ran out of attempts."""

    id: int
    learner: str  # keyed pseudonym of the learner, never the address
    channel: str
    lesson_id: str
    kind: str
    attempts: int
    error: str
    updated_at: datetime


async def dead_letters(engine: AsyncEngine, secret_key: str) -> list[DeadLetter]:
    """Every dead delivery, oldest first."""
    query = (
        select(deliveries, learners.c.learner_key)
        .join(learners, learners.c.id == deliveries.c.learner_id)
        .where(deliveries.c.status == DEAD)
        .order_by(deliveries.c.id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        DeadLetter(
            id=row.id,
            learner=pseudonym(secret_key, row.learner_key),
            channel=row.channel,
            lesson_id=row.lesson_id,
            kind=row.kind,
            attempts=row.attempts,
            error=" ".join(filter(None, (row.error_code, row.error_detail))),
            updated_at=row.updated_at,
        )
        for row in rows
    ]


async def requeue(engine: AsyncEngine, ids: Sequence[int] | None) -> int:
    """Make dead deliveries (these ids, or all when None) pending again with fresh attempts."""
    now = utcnow()
    statement = (
        update(deliveries)
        .where(deliveries.c.status == DEAD)
        .values(
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=None,
            due_at=now,
            claimed_by=None,
            claimed_until=None,
            updated_at=now,
        )
    )
    if ids is not None:
        statement = statement.where(deliveries.c.id.in_(list(ids)))
    async with engine.begin() as conn:
        return int((await conn.execute(statement)).rowcount)


@click.group()
def outbox() -> None:
    """The outbox: what waits (pending), dead letters (failed) and re-queueing."""


@outbox.command("failed")
def failed_command() -> None:
    """List dead letters: id, learner pseudonym, lesson, attempts and the last error."""
    from bot.cli import load_settings

    settings = load_settings()

    async def run() -> list[DeadLetter]:
        engine = create_engine(settings.database_url)
        try:
            return await dead_letters(engine, settings.secret_key)
        finally:
            await engine.dispose()

    letters = asyncio.run(run())
    if not letters:
        click.echo("no dead letters")
        return
    click.echo("id\tlearner\tchannel\tlesson\tattempts\terror")
    for letter in letters:
        click.echo(
            f"{letter.id}\t{letter.learner}\t{letter.channel}\t{letter.lesson_id}\t"
            f"{letter.attempts}\t{letter.error}"
        )


@outbox.command("requeue")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Re-queue every dead letter.")
def requeue_command(ids: tuple[int, ...], everything: bool) -> None:
    """Send dead letters again: by id, or --all."""
    from bot.cli import load_settings

    if bool(ids) == everything:
        raise click.UsageError("give delivery ids or --all (not both)")
    settings = load_settings()

    async def run() -> int:
        engine = create_engine(settings.database_url)
        try:
            return await requeue(engine, None if everything else ids)
        finally:
            await engine.dispose()

    count = asyncio.run(run())
    click.echo(f"{count} deliveries re-queued")
    if ids and count < len(ids):
        raise click.ClickException(f"{len(ids) - count} of the ids given are not dead letters")
