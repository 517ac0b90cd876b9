"""`learnbot outbox failed|requeue`: dead letters are listed by pseudonym and can be re-sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.domain import ChannelName
from bot.store.tables import deliveries
from scheduler.commands import dead_letters, requeue
from tests.scheduler.outbox_rows import add_cohort, add_learner, add_lessons, lesson_row

SECRET = "a-test-secret-of-16+"


async def make_dead(engine: AsyncEngine, count: int) -> list[int]:
    """`count` lesson deliveries that ran out of attempts: their ids."""
    async with engine.begin() as conn:
        cohort = await add_cohort(conn)
        for _ in range(count):
            learner, enrollment = await add_learner(conn, cohort, address=None)
            await add_lessons(conn, [lesson_row(learner, enrollment)])
        await conn.execute(
            update(deliveries).values(status="dead", attempts=5, error_code="503", error_detail="x")
        )
    return list(range(1, count + 1))


async def test_dead_letters_are_listed_and_requeued(engine: AsyncEngine) -> None:
    ids = await make_dead(engine, 3)
    letters = await dead_letters(engine, SECRET)
    assert [letter.id for letter in letters] == ids
    assert all(len(letter.learner) == 16 and "+" not in letter.learner for letter in letters)
    assert letters[0].error == "503 x" and letters[0].channel == ChannelName.SMS.value
    assert await requeue(engine, [ids[0]]) == 1
    assert [letter.id for letter in await dead_letters(engine, SECRET)] == ids[1:]
    assert await requeue(engine, None) == 2
    assert await dead_letters(engine, SECRET) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_cli_lists_and_requeues(
    engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await make_dead(engine, 2)
    monkeypatch.setenv("LEARNBOT_DATABASE_URL", database_url)
    monkeypatch.setenv("LEARNBOT_SECRET_KEY", SECRET)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    runner = CliRunner()
    listed = await asyncio.to_thread(runner.invoke, main, ["outbox", "failed"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[0].startswith("id\tlearner")
    assert len(listed.output.splitlines()) == 3
    refused = await asyncio.to_thread(runner.invoke, main, ["outbox", "requeue"])
    assert refused.exit_code != 0 and "ids or --all" in refused.output
    done = await asyncio.to_thread(runner.invoke, main, ["outbox", "requeue", "--all"])
    assert done.exit_code == 0 and "2 deliveries re-queued" in done.output
    assert (
        await asyncio.to_thread(runner.invoke, main, ["outbox", "failed"])
    ).output.strip() == "no dead letters"
