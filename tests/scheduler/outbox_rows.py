"""Shared helpers of the dispatcher tests: a small course, learners with due lessons, a channel."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.channels.base import SendError
from bot.dialogue import Dialogue
from bot.domain import (
    ChannelName,
    DeliveryKind,
    DeliveryStatus,
    LearnerStatus,
    RenderedMessage,
    SendResult,
)
from bot.i18n import UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import load_courses
from bot.store.db import utcnow
from bot.store.tables import cohorts, deliveries, enrollments, learners

ROOT = Path(__file__).resolve().parents[2]
COURSE = {"id": "basics", "title": "Basics", "locales": ["en"], "lessons": ["users", "data"]}
LESSONS = {
    "users": {
        "id": "users",
        "title": "Start with users",
        "body": "Good services start with the people who use them.",
        "questions": [
            {
                "id": "q1",
                "kind": "single_choice",
                "prompt": "Where do you start?",
                "options": [{"text": "With the rules"}, {"text": "With the users"}],
                "answer": 2,
            }
        ],
    },
    "data": {
        "id": "data",
        "title": "Less data",
        "body": "Collect only what you need.",
        "questions": [
            {"id": "q1", "kind": "true_false", "prompt": "Collect all.", "answer": False}
        ],
    },
}


def write_course(root: Path) -> Path:
    """The two-lesson `basics` course under `root/lessons`."""
    course = root / "lessons" / "basics"
    course.mkdir(parents=True, exist_ok=True)
    (course / "course.yaml").write_text(yaml.safe_dump(COURSE), encoding="utf-8")
    for number, (lesson_id, lesson) in enumerate(LESSONS.items(), start=1):
        (course / f"0{number}-{lesson_id}.yaml").write_text(yaml.safe_dump(lesson))
    return root / "lessons"


def make_dialogue(engine: AsyncEngine, lessons_dir: Path, **options: Any) -> Dialogue:
    """A Dialogue on the `basics` course (UI catalogs of the repository)."""
    courses = load_courses(lessons_dir)
    content = load_translations(courses.values(), lessons_dir.parent / "locales")
    return Dialogue(engine, courses, content, UiCatalogs(ROOT / "locales"), **options)


class FakeChannel:
    """Records what it sends; `fail` decides, per message, to raise a SendError instead."""

    def __init__(self, name: ChannelName = ChannelName.SMS) -> None:
        self._name = name
        self.sent: list[RenderedMessage] = []
        self.fail: Callable[[RenderedMessage], SendError | None] = lambda message: None

    @property
    def name(self) -> ChannelName:
        """The channel this fake stands for."""
        return self._name

    async def send(self, message: RenderedMessage) -> SendResult:
        """Record the message, or raise what `fail` returns for it."""
        error = self.fail(message)
        if error is not None:
            raise error
        self.sent.append(message)
        return SendResult(f"fake-{len(self.sent)}", segments=message.segments)


async def add_cohort(conn: AsyncConnection) -> int:
    """A scheduled cohort on `basics`: its id."""
    result = await conn.execute(
        insert(cohorts).returning(cohorts.c.id),
        {
            "name": "Cohort",
            "join_code": uuid.uuid4().hex[:8].upper(),
            "course_ids": ["basics"],
            "time_zone": "UTC",
            "pacing": "scheduled",
            "status": "active",
            "created_at": utcnow(),
        },
    )
    return int(result.scalar_one())


async def add_learner(
    conn: AsyncConnection,
    cohort_id: int,
    *,
    channel: ChannelName = ChannelName.SMS,
    status: LearnerStatus = LearnerStatus.ACTIVE,
    address: str | None = None,
    last_inbound_at: datetime | None = None,
    locale: str = "en",
) -> tuple[int, int]:
    """An enrolled learner: (learner id, enrollment id)."""
    now = utcnow()
    learner_id = (
        await conn.execute(
            insert(learners).returning(learners.c.id),
            {
                "learner_key": str(uuid.uuid4()),
                "channel": channel.value,
                "address": address or f"+2547{uuid.uuid4().int % 10**8:08d}",
                "locale": locale,
                "status": status.value,
                "last_inbound_at": last_inbound_at or now,
                "created_at": now,
                "updated_at": now,
            },
        )
    ).scalar_one()
    enrollment_id = (
        await conn.execute(
            insert(enrollments).returning(enrollments.c.id),
            {
                "learner_id": learner_id,
                "cohort_id": cohort_id,
                "course_id": "basics",
                "status": "active",
                "attempt": 0,
                "reminders_sent": 0,
                "enrolled_at": now,
            },
        )
    ).scalar_one()
    return int(learner_id), int(enrollment_id)


def lesson_row(
    learner_id: int,
    enrollment_id: int,
    *,
    lesson_id: str = "users",
    channel: ChannelName = ChannelName.SMS,
    due_at: datetime | None = None,
    priority: int = 1,
) -> dict[str, Any]:
    """A planned lesson delivery (payload NULL: rendered at send time)."""
    now = utcnow()
    return {
        "learner_id": learner_id,
        "enrollment_id": enrollment_id,
        "lesson_id": lesson_id,
        "kind": DeliveryKind.LESSON.value,
        "channel": channel.value,
        "status": DeliveryStatus.PENDING.value,
        "priority": priority,
        "due_at": due_at or now,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


async def add_lessons(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert planned lesson deliveries."""
    await conn.execute(insert(deliveries), rows)
