"""A small two-course pathway, a Dialogue on the migrated `engine`, and a chat helper."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.dialogue import Dialogue
from bot.domain import ChannelName, InboundMessage, OutboundMessage
from bot.i18n import UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import load_courses
from bot.store.tables import events, learners

ROOT = Path(__file__).resolve().parents[2]

BASICS = {
    "id": "basics",
    "title": "Basics",
    "locales": ["en"],
    "lessons": ["users", "survey"],
}
USERS = {
    "id": "users",
    "title": "Start with users",
    "body": "Good services start with the people who use them.",
    "questions": [
        {
            "id": "q1",
            "kind": "single_choice",
            "prompt": "Where do you start?",
            "options": [
                {"text": "With the rules", "feedback": "Rules come later."},
                {"text": "With the users", "feedback": "Yes: users first."},
                {"text": "With software", "feedback": "Software comes later."},
            ],
            "answer": 2,
        },
        {
            "id": "q2",
            "kind": "true_false",
            "prompt": "Collect all the data you can.",
            "answer": False,
            "feedback": {"correct": "Right: only what you need.", "incorrect": "No: less."},
        },
    ],
}
SURVEY = {
    "id": "survey",
    "type": "survey",
    "title": "Your view",
    "body": "Two questions about the course.",
    "questions": [
        {"id": "q1", "kind": "rating", "prompt": "How useful was it?"},
        {"id": "q2", "kind": "free_text", "prompt": "What will you change?"},
    ],
}
NEXT_STEPS = {"id": "next-steps", "title": "Next steps", "locales": ["en"], "lessons": ["plan"]}
PLAN = {
    "id": "plan",
    "title": "Make a plan",
    "body": "Write down one change.",
    "questions": [{"id": "q1", "kind": "free_text", "prompt": "Your change?"}],
}


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.fixture
def lessons_dir(tmp_path: Path) -> Path:
    """Two courses: basics (2 lessons) then next-steps (1 lesson)."""
    root = tmp_path / "lessons"
    _write(root / "basics" / "course.yaml", BASICS)
    _write(root / "basics" / "01-users.yaml", USERS)
    _write(root / "basics" / "02-survey.yaml", SURVEY)
    _write(root / "next-steps" / "course.yaml", NEXT_STEPS)
    _write(root / "next-steps" / "01-plan.yaml", PLAN)
    return root


@pytest.fixture
async def dialogue(engine: AsyncEngine, lessons_dir: Path) -> AsyncIterator[Dialogue]:
    """A Dialogue with a self-paced cohort TEAM1 (basics, then next-steps)."""
    courses = load_courses(lessons_dir)
    content = load_translations(courses.values(), lessons_dir.parent / "locales")
    dialogue = Dialogue(engine, courses, content, UiCatalogs(ROOT / "locales"))
    await dialogue.create_cohort(
        name="Team one", join_code="team1", course_ids=["basics", "next-steps"]
    )
    try:
        yield dialogue
    finally:
        await dialogue.aclose()


class Chat:
    """One learner's phone: send a message, get the replies; provider ids are unique."""

    _ids = itertools.count()

    def __init__(
        self,
        dialogue: Dialogue,
        address: str = "+15550100",
        channel: ChannelName = ChannelName.SMS,
    ) -> None:
        self.dialogue = dialogue
        self.address = address
        self.channel = channel

    async def send(self, text: str = "", payload: str | None = None) -> list[OutboundMessage]:
        """Send one message (or a button press) and return the replies."""
        return await self.dialogue.handle(
            InboundMessage(
                self.channel,
                self.address,
                text,
                payload=payload,
                provider_id=f"SM{next(self._ids)}",
            )
        )

    async def say(self, text: str = "", payload: str | None = None) -> str:
        """Send one message and return all reply texts joined."""
        return "\n".join(reply.text for reply in await self.send(text, payload))

    async def learner(self) -> Any:
        """The learner row of this address (None once deleted)."""
        async with self.dialogue.engine.connect() as conn:
            query = select(learners).where(learners.c.address == self.address)
            return (await conn.execute(query)).first()

    async def events(self, key: str) -> list[Any]:
        """Events of a learner_key, in order."""
        async with self.dialogue.engine.connect() as conn:
            query = select(events).where(events.c.learner_key == key).order_by(events.c.id)
            return list((await conn.execute(query)).all())


@pytest.fixture
def chat(dialogue: Dialogue) -> Chat:
    """A learner's chat with the dialogue."""
    return Chat(dialogue)


async def joined(chat: Chat, locale_choice: str = "1") -> str:
    """Join TEAM1, pick a language by number, skip the profile: the first lesson's text."""
    await chat.send("JOIN TEAM1")
    await chat.send(locale_choice)
    await chat.send("SKIP")
    await chat.send("SKIP")
    return await chat.say("SKIP")
