"""Fixtures shared by the scheduler tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.dialogue import Dialogue
from tests.scheduler.outbox_rows import make_dialogue, write_course


@pytest.fixture
async def dialogue(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Dialogue]:
    """A dialogue on the two-lesson `basics` course."""
    dialogue = make_dialogue(engine, write_course(tmp_path))
    yield dialogue
    await dialogue.aclose()
