"""The event export at scale: memory flat in the number of events, learners by the batch."""

from __future__ import annotations

import io
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics import export as export_module
from bot.analytics.export import export_events_csv
from bot.analytics.pseudonym import pseudonym
from bot.domain import ChannelName, EventType
from bot.store.events import EventRow, append_events
from bot.store.tables import learners
from tests.store.rows import insert_learner

KEY = "export-streaming-secret"
START = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


class Discard(io.TextIOBase):
    """A file that keeps nothing: what the export holds in memory is all that is measured."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


async def add_events(engine: AsyncEngine, keys: list[str], first: int, count: int) -> None:
    """`count` answered events, spread over the learners, one second apart from event `first`."""
    async with engine.begin() as conn:
        for start in range(first, first + count, 5000):
            await append_events(
                conn,
                [
                    EventRow(
                        type=EventType.ANSWERED,
                        learner_key=keys[n % len(keys)],
                        cohort_id=1 + n % 3,
                        course_id="digital-skills",
                        lesson_id="user-centred-design",
                        question_id=f"q{1 + n % 3}",
                        locale="sw",
                        channel=ChannelName.SMS,
                        correct=n % 2 == 0,
                        attempt=1,
                        detail={"kind": "single_choice", "value": str(1 + n % 4)},
                        occurred_at=START + timedelta(seconds=n),
                    )
                    for n in range(start, min(start + 5000, first + count))
                ],
            )


async def peak_bytes_of_export(engine: AsyncEngine) -> tuple[int, int]:
    """The export's peak of Python memory (every thread, the driver's too) and its lines."""
    out = Discard()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        await export_events_csv(engine, out, secret_key=KEY)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before, out.lines


async def test_memory_does_not_grow_with_the_number_of_events(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so that 4,000 and 24,000 events are many batches each.
    monkeypatch.setattr(export_module, "BATCH_SIZE", 500)
    async with engine.begin() as conn:
        keys = [(await insert_learner(conn))["learner_key"] for _ in range(50)]
    await add_events(engine, keys, 0, 4_000)
    small, small_lines = await peak_bytes_of_export(engine)
    await add_events(engine, keys, 4_000, 20_000)

    large, large_lines = await peak_bytes_of_export(engine)

    assert (small_lines, large_lines) == (4_001, 24_001)  # the header, then every event
    # Holding the rows would cost ~1 KB each, 20 MB for the 20,000 more: the peak stays put.
    assert large < small + 1_000_000, (small, large)


async def test_learners_beyond_the_cache_are_looked_up_batch_by_batch(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.begin() as conn:
        rows = [
            await insert_learner(conn, profile_role=f"role {n}", profile_country="KE")
            for n in range(12)
        ]
        visitor = await insert_learner(conn, channel="sandbox", address="web-00ff")
        await conn.execute(
            update(learners).where(learners.c.id == rows[0]["id"]).values(status="deleted")
        )
    keys = [row["learner_key"] for row in rows] + [visitor["learner_key"], "gone-learner"]
    await add_events(engine, keys, 0, 140)
    everyone_at_once = await exported(engine, include_addresses=True)
    monkeypatch.setattr(export_module, "BATCH_SIZE", 7)
    monkeypatch.setattr(export_module, "LEARNER_CACHE_LIMIT", 5)  # fewer than in a batch

    by_the_batch = await exported(engine, include_addresses=True)

    assert by_the_batch == everyone_at_once
    lines = by_the_batch.splitlines()
    assert len(lines) == 1 + 140 - 10  # the sandbox visitor's 10 events are left out
    first = {line.split(",")[2]: line for line in lines[1:]}
    assert first[pseudonym(KEY, rows[1]["learner_key"])].endswith(
        f",role 1,KE,,{rows[1]['address']}"
    )
    assert first[pseudonym(KEY, rows[0]["learner_key"])].endswith(",,,,")  # deleted
    assert first[pseudonym(KEY, "gone-learner")].endswith(",,,,")  # no learner row at all
    assert pseudonym(KEY, visitor["learner_key"]) not in first


async def test_times_are_utc_to_the_second_as_before(engine: AsyncEngine) -> None:
    moments = [
        datetime(2024, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2025, 1, 1, 2, 30, 0, tzinfo=UTC).astimezone(),  # not UTC: stored as UTC
        datetime(2025, 6, 30, 12, 0, 0, 1, tzinfo=UTC),
    ]
    async with engine.begin() as conn:
        await append_events(
            conn,
            [EventRow(type=EventType.ENROLLED, learner_key="k", occurred_at=m) for m in moments],
        )

    lines = (await exported(engine)).splitlines()[1:]

    assert [line.split(",")[0] for line in lines] == [
        "2024-12-31T23:59:59Z",
        "2025-01-01T02:30:00Z",
        "2025-06-30T12:00:00Z",
    ]


async def exported(engine: AsyncEngine, **options: Any) -> str:
    out = io.StringIO()
    await export_events_csv(engine, out, secret_key=KEY, **options)
    return out.getvalue()
