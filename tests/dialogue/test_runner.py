"""SQLite turns run inline, and wait on the loop while another writer holds the lock."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from bot.dialogue import Dialogue
from bot.dialogue.runner import AsyncRunner, SqliteRunner
from tests.dialogue.conftest import Chat


async def test_a_locked_database_delays_the_turn_without_blocking_the_loop(
    dialogue: Dialogue, chat: Chat
) -> None:
    if dialogue.engine.dialect.name != "sqlite":
        assert isinstance(dialogue.runner, AsyncRunner)
        pytest.skip("the lock wait is SQLite's; PostgreSQL turns use the AsyncEngine")
    assert isinstance(dialogue.runner, SqliteRunner)
    other_writer = sqlite3.connect(str(dialogue.engine.url.database), isolation_level=None)
    try:
        other_writer.execute("BEGIN IMMEDIATE")
        turn = asyncio.create_task(chat.send("JOIN TEAM1"))
        ticks = 0
        for _ in range(20):  # the loop keeps running while the turn waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert not turn.done() and ticks == 20
        other_writer.execute("COMMIT")
        replies = await asyncio.wait_for(turn, timeout=5)
    finally:
        other_writer.close()
    assert "Welcome to Team one!" in replies[0].text
    assert (await chat.learner()) is not None
