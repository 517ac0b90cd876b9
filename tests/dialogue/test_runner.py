"""SQLite turns run inline, and wait on the loop while another writer holds the lock."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.dialogue import Dialogue
from bot.dialogue import runner as runner_module
from bot.dialogue.runner import AsyncRunner, SqliteRunner, WalCheckpointer
from bot.store.db import create_engine
from bot.store.repository import Db
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


def _rows_in_database_file(path: Path, copy_to: Path) -> int:
    """Rows of table t in the database file alone, as if the WAL were lost."""
    shutil.copyfile(path, copy_to)  # without its -wal: only what was checkpointed
    copy = sqlite3.connect(copy_to)
    try:
        return int(copy.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        copy.close()


def test_the_checkpointer_copies_committed_rows_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (x TEXT)")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the table is in the file, no rows
    writer.executemany("INSERT INTO t VALUES (?)", [("row",)] * 500)
    assert _rows_in_database_file(path, tmp_path / "before.db") == 0
    checkpointer = WalCheckpointer(str(path), interval=0.01)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 5
        while _rows_in_database_file(path, tmp_path / "after.db") < 500:
            assert time.monotonic() < deadline, "no checkpoint within 5 s"
            time.sleep(0.02)
    finally:
        checkpointer.stop()
        writer.close()


async def test_turn_commits_leave_checkpoints_to_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "CHECKPOINT_SECONDS", 3600.0)  # only the final one
    path = tmp_path / "turns.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x TEXT)")
    setup.close()  # the last connection: checkpoints the table into the file
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    runner = SqliteRunner(engine)

    async def write(db: Db) -> None:
        # Over 1,000 pages of WAL: SQLite's own autocheckpoint would have copied them.
        await db.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "x" * 4000}] * 1200)

    try:
        await runner.run(write)
        assert _rows_in_database_file(path, tmp_path / "inline.db") == 0
    finally:
        await runner.aclose()  # the last checkpoint
        await engine.dispose()
    assert _rows_in_database_file(path, tmp_path / "closed.db") == 1200
