"""The console's rollups, folded from the event log in id order, one chunk per transaction.

Rollups kept on write would add three or four statements to every graded answer, and a
dialogue turn runs six or seven: the dialogue's throughput would drop by far more than the
10% the console may cost it. Folding reads the log instead, behind the writers: the console
folds what arrived since the last fold before it reads a figure (so its figures are exact),
and the scheduler folds every few seconds so that tail stays small.

A chunk is summed by the database, not in Python: grouped per question, day and value, per
learner with window sums, and the score and enrollment rows written by UPDATE ... FROM and
INSERT ... SELECT. A fold costs 10 to 15 µs per event that way; reading each event into
Python cost about 150.

Two guarantees make a fold exact, never double and never short:
- A chunk's rollup changes and the cursor's move commit together, and the move is a
  compare-and-set on the cursor row: a second folder of the same chunk moves nothing and
  rolls back.
- Only settled ids are folded. PostgreSQL hands out ids before commit, so id 100 may
  commit after 101; `settled_max_id` takes a SHARE lock on events for an instant, which
  waits for every open inserting transaction, so every id up to the max it reads has
  committed or never will. SQLite has one writer at a time, so its ids commit in order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.domain import ChannelName, EventType
from bot.store.tables import (
    ATTRIBUTE_NAMES,
    enrollment_progress,
    enrollments,
    events,
    learner_scores,
    learners,
    lesson_completions,
    lesson_days,
    question_days,
    question_sums,
    rollup_cursor,
)

CURSOR = "console"
CHUNK = 10_000  # ids per transaction: SQLite's writer is held about 0.15 s at most
MAX_OPTIONS = 5  # the lesson format allows 2 to 5 options
_IN_BATCH = 500  # keys per IN list
_SANDBOX = ChannelName.SANDBOX.value

_ATTRIBUTES = ATTRIBUTE_NAMES
# The per-day rollups' keys (ending with the day) and what they count.
_QUESTION_DAY = ("course_id", "lesson_id", "question_id", "cohort_id", "day")
_QUESTION_COUNTS = ("answered", "right_first", *(f"option_{n}" for n in range(1, MAX_OPTIONS + 1)))
_LESSON_DAY = ("course_id", "lesson_id", "cohort_id", "day")
Teaching = Mapping[str, Collection[str]]  # course id -> its teaching lessons' ids
# The events that come with a change to a learner's attributes (enrolling may create the
# learner; a deletion clears the profile), and those that change an enrollment's progress.
_ATTRIBUTE_EVENTS = frozenset(
    str(kind)
    for kind in (
        EventType.ENROLLED,
        EventType.PROFILE_UPDATED,
        EventType.LANGUAGE_CHANGED,
        EventType.DATA_DELETED,
        EventType.RESTARTED,
    )
)
_ENROLLMENT_EVENTS = _ATTRIBUTE_EVENTS | {str(EventType.LESSON_COMPLETED)}


def teaching_fingerprint(teaching: Teaching) -> str:
    """What enrollment_progress counts, in 64 characters: it is counted again when this moves."""
    named = {course: sorted(lessons) for course, lessons in sorted(teaching.items())}
    return hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()


# The event's type as an expression no index holds. Without statistics (a SQLite file never
# analysed), SQLite would rather walk ix_events_stage over every answer ever logged than the
# chunk's id range or a few learners' entries in ix_events_learner.
def _unindexed_type() -> ColumnElement[str]:
    return events.c.type.concat("")


def _graded_first(start: int | None, end: int) -> list[ColumnElement[bool]]:
    """First attempts at graded questions with ids in (start, end] (None: from the start)."""
    t = events.c
    clauses = [
        t.id <= end,
        _unindexed_type() == EventType.ANSWERED.value,
        t.attempt == 1,
        t.correct.is_not(None),
        t.course_id.is_not(None),
        t.lesson_id.is_not(None),
        t.question_id.is_not(None),
    ]
    return clauses if start is None else [t.id > start, *clauses]


def _utc_day(conn: AsyncConnection) -> ColumnElement[date]:
    """The UTC day an event occurred on, computed by the database."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone("UTC", events.c.occurred_at), Date)
    return type_coerce(func.date(events.c.occurred_at), Date)  # SQLite stores UTC text


def chosen_options(value: str | None) -> list[int]:
    """The option numbers (1-based) in a normalised answer: "1,3", "2", "true" (1), "false"."""
    if value in ("true", "false"):
        return [1 if value == "true" else 2]
    return [int(part) for part in (value or "").split(",") if part.strip().isdigit()]


def _batches(items: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == _IN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def settled_max_id(engine: AsyncEngine) -> int:
    """The highest event id below which every id has committed or never will."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # SHARE waits for open inserts and holds new ones back for this instant only.
            await conn.execute(text("LOCK TABLE events IN SHARE MODE"))
        return int(await conn.scalar(select(func.coalesce(func.max(events.c.id), 0))) or 0)


async def folded_up_to(conn: AsyncConnection) -> int:
    """The last event id the rollups hold (0 before the first fold)."""
    found = await conn.scalar(
        select(rollup_cursor.c.last_event_id).where(rollup_cursor.c.name == CURSOR)
    )
    return int(found or 0)


async def fold(
    engine: AsyncEngine, now: datetime, teaching: Teaching, *, chunk: int = CHUNK
) -> int:
    """Fold every settled event not yet folded into the rollups; how many ids it covered.

    `teaching` names the lessons that count as completed in enrollment_progress; when it
    changes (a course gained or lost a lesson), every enrollment is counted again.
    """
    await _ensure_cursor(engine)
    upto = await settled_max_id(engine)
    await _recount_enrollments(engine, teaching, upto)
    covered = 0
    while True:
        async with engine.connect() as conn:
            cursor = (
                await conn.execute(
                    select(rollup_cursor.c.last_event_id, rollup_cursor.c.enrollments_as_of).where(
                        rollup_cursor.c.name == CURSOR
                    )
                )
            ).one()
            start = int(cursor.last_event_id)
            if start >= upto:
                return covered
            end = min(upto, start + chunk)
            # The log is append-only and these ids are settled, so the chunk's sums are read
            # before the write transaction: SQLite's one writer is held only to add them in.
            sums = await _sum_chunk(conn, start, end)
        async with engine.begin() as conn:
            if not await _claim(conn, start, end, now):
                continue  # another folder took this chunk: read the cursor again
            await _fold_chunk(conn, sums, teaching, int(cursor.enrollments_as_of))
            covered += end - start


async def _recount_enrollments(engine: AsyncEngine, teaching: Teaching, upto: int) -> None:
    """Count every enrollment again if the teaching lessons are not those last counted."""
    fingerprint = teaching_fingerprint(teaching)
    async with engine.connect() as conn:  # a read first: the console folds on every page
        counted = await conn.scalar(
            select(rollup_cursor.c.teaching).where(rollup_cursor.c.name == CURSOR)
        )
    if counted == fingerprint:
        return
    async with engine.begin() as conn:
        # The cursor row's lock comes first, as in a chunk's claim: folders take turns.
        moved = await conn.execute(
            update(rollup_cursor)
            .where(
                rollup_cursor.c.name == CURSOR,
                or_(rollup_cursor.c.teaching.is_(None), rollup_cursor.c.teaching != fingerprint),
            )
            .values(teaching=fingerprint, enrollments_as_of=upto)
        )
        if not moved.rowcount:
            return
        await conn.execute(delete(enrollment_progress))
        await _refresh_enrollments(conn, None, teaching)


async def _ensure_cursor(engine: AsyncEngine) -> None:
    """Create the cursor row at the start of the log, once (safe to race)."""
    async with engine.connect() as conn:
        if await folded_up_to(conn) or await conn.scalar(
            select(rollup_cursor.c.name).where(rollup_cursor.c.name == CURSOR)
        ):
            return
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(rollup_cursor).values(name=CURSOR, last_event_id=0))
    except IntegrityError:
        pass  # another folder created it first


async def _claim(conn: AsyncConnection, start: int, end: int, now: datetime) -> bool:
    """Move the cursor from start to end, if it is still at start (the row lock serialises)."""
    moved = await conn.execute(
        update(rollup_cursor)
        .where(rollup_cursor.c.name == CURSOR, rollup_cursor.c.last_event_id == start)
        .values(last_event_id=end, folded_at=now)
    )
    return bool(moved.rowcount)


@dataclass(frozen=True, slots=True)
class _ChunkSums:
    """What a chunk adds to the question rollups, summed by the database from the log."""

    start: int
    end: int
    days: dict[tuple[Any, ...], list[int]]  # question, cohort, day -> answered, right, options
    delivered: dict[tuple[Any, ...], list[int]]  # course, lesson, cohort, day -> [lessons]
    items: Sequence[Any]  # per question and cohort: the change to n, sx, st, stt, sxt


async def _sum_chunk(conn: AsyncConnection, start: int, end: int) -> _ChunkSums:
    """Read the sums of the events with ids in (start, end]: a few hundred grouped rows for
    thousands of events, so the fold's cost is the database's scan, not a Python object per
    event."""
    days = await _day_deltas(conn, start, end)
    delivered = await _delivered_deltas(conn, start, end)
    items = (await conn.execute(_item_deltas(start, end))).all()
    return _ChunkSums(start, end, days, delivered, items)


async def _fold_chunk(
    conn: AsyncConnection, sums: _ChunkSums, teaching: Teaching, enrollments_as_of: int
) -> None:
    """Add a chunk's sums to the rollups, and its learners' scores, attributes, enrollments."""
    start, end = sums.start, sums.end
    await _add_day_rows(conn, question_days, _QUESTION_DAY, _QUESTION_COUNTS, sums.days)
    await _add_day_rows(conn, lesson_days, _LESSON_DAY, ("delivered",), sums.delivered)
    await _apply_sums(conn, sums.items)
    await _add_scores(conn, start, end)
    # Only what can change a learner's attributes or enrollments asks for their rows again
    # (an answer, most of the log, does not): a profile answer, a language, a deletion, a
    # completed lesson. Enrollments the last recount saw already are left alone.
    await _refresh_attributes(conn, _learners_with(start, end, _ATTRIBUTE_EVENTS))
    changed = _learners_with(start, end, _ENROLLMENT_EVENTS, after=enrollments_as_of)
    await _refresh_enrollments(conn, changed, teaching)


async def _day_deltas(
    conn: AsyncConnection, start: int, end: int
) -> dict[tuple[Any, ...], list[int]]:
    """The chunk's first attempts per (question, cohort, day): answered, right, each option.

    Grouped by the answer's value too (a handful per question), so the database reads each
    value once and the few groups are split into options here.
    """
    t = events.c
    day = _utc_day(conn).label("day")
    value = t.detail["value"].as_string().label("value")
    grouped = (
        select(
            t.course_id,
            t.lesson_id,
            t.question_id,
            t.cohort_id,
            day,
            value,
            func.count().label("answered"),
            func.sum(case((t.correct, 1), else_=0)).label("right_first"),
        )
        .where(*_graded_first(start, end), t.channel != _SANDBOX)
        .group_by(t.course_id, t.lesson_id, t.question_id, t.cohort_id, day, value)
    )
    deltas: dict[tuple[Any, ...], list[int]] = {}
    for group in await conn.execute(grouped):
        key = tuple(getattr(group, name) for name in _QUESTION_DAY)
        counts = deltas.setdefault(key, [0] * (2 + MAX_OPTIONS))
        counts[0] += int(group.answered)
        counts[1] += int(group.right_first)
        for option in chosen_options(group.value):
            if 1 <= option <= MAX_OPTIONS:
                counts[1 + option] += int(group.answered)
    return deltas


async def _delivered_deltas(
    conn: AsyncConnection, start: int, end: int
) -> dict[tuple[Any, ...], list[int]]:
    """The chunk's lessons delivered per (course, lesson, cohort, day)."""
    t = events.c
    day = _utc_day(conn).label("day")
    grouped = (
        select(t.course_id, t.lesson_id, t.cohort_id, day, func.count().label("delivered"))
        .where(
            t.id > start,
            t.id <= end,
            _unindexed_type() == EventType.LESSON_DELIVERED.value,
            t.channel != _SANDBOX,
            t.course_id.is_not(None),
            t.lesson_id.is_not(None),
        )
        .group_by(t.course_id, t.lesson_id, t.cohort_id, day)
    )
    return {
        tuple(getattr(row, name) for name in _LESSON_DAY): [int(row.delivered)]
        for row in await conn.execute(grouped)
    }


async def _add_day_rows(
    conn: AsyncConnection,
    table: Any,
    key: Sequence[str],
    counted: Sequence[str],
    deltas: dict[tuple[Any, ...], list[int]],
) -> None:
    """Add the chunk's counts to their rows of a per-day rollup (`key` ends with the day)."""
    if not deltas:
        return
    existing: dict[tuple[Any, ...], Any] = {}
    for days in _batches(sorted({found[-1] for found in deltas})):
        for found in (await conn.execute(select(table).where(table.c.day.in_(days)))).all():
            existing[tuple(getattr(found, name) for name in key)] = found
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for values, counts in deltas.items():
        row = existing.get(values)
        if row is None:
            inserts.append(
                {**dict(zip(key, values, strict=True)), **dict(zip(counted, counts, strict=True))}
            )
        else:
            updates.append(
                {
                    "row_id": row.id,
                    **{
                        n: getattr(row, n) + count for n, count in zip(counted, counts, strict=True)
                    },
                }
            )
    if inserts:
        await conn.execute(insert(table), inserts)
    await _update_rows(conn, table, updates)


async def _update_rows(conn: AsyncConnection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE table SET (each row's columns) WHERE id = row_id, in one executemany."""
    if not rows:
        return
    names = [name for name in rows[0] if name != "row_id"]
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({name: bindparam(f"new_{name}") for name in names})  # a column's own name is taken
    )
    await conn.execute(
        statement,
        [{"row_id": row["row_id"], **{f"new_{name}": row[name] for name in names}} for row in rows],
    )


def _item_deltas(start: int, end: int) -> Select[Any]:
    """Per question and cohort, the change the chunk makes to its sums.

    A learner's share of item i is (1, x_i, t, t^2, x_i t), t their score on the course;
    a new answer changes t, so their share of every item they answered changes: the fold
    takes off the share they had before this chunk (b = 1 marks an answer from before it)
    and adds the one they have after it, summed per item by the database.
    """
    t = events.c
    answering = select(t.learner_key).where(*_graded_first(start, end), t.channel != _SANDBOX)
    x = case((t.correct, 1), else_=0)
    before = case((t.id <= start, 1), else_=0)
    # Each answer of these learners, with their score before the chunk and after it over
    # the same course and cohort (window sums, so no join: SQLite would loop it).
    of_theirs = [
        t.learner_key.in_(answering.distinct().scalar_subquery()),
        *_graded_first(None, end),
    ]
    learner = (t.learner_key, t.cohort_id, t.course_id)  # NULL cohorts partition together
    history = (
        select(
            t.cohort_id,
            t.course_id,
            t.lesson_id,
            t.question_id,
            x.label("x"),
            before.label("b"),
            func.sum(x).over(partition_by=learner).label("ta"),
            func.sum(x * before).over(partition_by=learner).label("tb"),
            func.sum(1 - before).over(partition_by=learner).label("new"),
        )
        .where(*of_theirs)
        .subquery("history")
    )
    h = history.c
    ta, tb, b = h.ta, h.tb, h.b
    per_item = (
        select(
            h.course_id,
            h.lesson_id,
            h.question_id,
            h.cohort_id,
            func.sum(1 - b).label("n"),
            func.sum(h.x - b * h.x).label("sx"),
            func.sum(ta - b * tb).label("st"),
            func.sum(ta * ta - b * tb * tb).label("stt"),
            func.sum(h.x * ta - b * h.x * tb).label("sxt"),
        )
        .where(h.new > 0)  # a learner with no answer in the chunk changes nothing
        .group_by(h.course_id, h.lesson_id, h.question_id, h.cohort_id)
    )
    return per_item


async def _add_scores(conn: AsyncConnection, start: int, end: int) -> None:
    """Add the chunk's first attempts to their learners' score rows, in two statements: the
    rows there are updated, the others inserted with their learner's attributes."""
    t = events.c
    chunk = (
        select(
            t.learner_key,
            t.cohort_id,
            t.course_id,
            func.count().label("answered"),
            func.sum(case((t.correct, 1), else_=0)).label("right_first"),
        )
        .where(*_graded_first(start, end), t.channel != _SANDBOX)
        .group_by(t.learner_key, t.cohort_id, t.course_id)
        .subquery("chunk")
    )
    s, c = learner_scores.c, chunk.c
    same = [
        s.learner_key == c.learner_key,
        func.coalesce(s.cohort_id, -1) == func.coalesce(c.cohort_id, -1),
        s.course_id == c.course_id,
    ]
    await conn.execute(
        update(learner_scores)
        .where(*same)
        .values(answered=s.answered + c.answered, right_first=s.right_first + c.right_first)
    )
    # A learner whose row is gone keeps no attributes (and no channel).
    attributes = [learners.c[name] for name in _ATTRIBUTES if name != "channel"]
    new_rows = (
        select(
            c.learner_key,
            c.cohort_id,
            c.course_id,
            c.answered,
            c.right_first,
            *attributes,
            func.coalesce(learners.c.channel, "").label("channel"),
        )
        .select_from(chunk.outerjoin(learners, learners.c.learner_key == c.learner_key))
        .where(~select(s.id).where(*same).exists())
    )
    names = [
        "learner_key",
        "cohort_id",
        "course_id",
        "answered",
        "right_first",
        *(column.name for column in attributes),
        "channel",
    ]
    await conn.execute(insert(learner_scores).from_select(names, new_rows))


async def _apply_sums(conn: AsyncConnection, deltas: Sequence[Any]) -> None:
    """Add each item's change to its question_sums row."""
    if not deltas:
        return
    q = question_sums.c
    existing = {
        (row.course_id, row.lesson_id, row.question_id, row.cohort_id): row
        for row in (
            await conn.execute(
                select(question_sums).where(q.question_id.in_({d.question_id for d in deltas}))
            )
        ).all()
    }  # one row per cohort and question: a few thousand at most
    names = ("n", "sx", "st", "stt", "sxt")
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for delta in deltas:
        key = (delta.course_id, delta.lesson_id, delta.question_id, delta.cohort_id)
        row = existing.get(key)
        if row is None:
            inserts.append({**dict(delta._mapping), **{n: int(getattr(delta, n)) for n in names}})
        else:
            updates.append(
                {"row_id": row.id, **{n: getattr(row, n) + int(getattr(delta, n)) for n in names}}
            )
    if inserts:
        await conn.execute(insert(question_sums), inserts)
    await _update_rows(conn, question_sums, updates)


def _learners_with(start: int, end: int, kinds: Collection[str], after: int = 0) -> Any:
    """The learners (keys) with an event of these kinds in the chunk, later than `after`."""
    t = events.c
    return (
        select(t.learner_key)
        .where(
            t.id > max(start, after),
            t.id <= end,
            _unindexed_type().in_(sorted(kinds)),
            t.channel != _SANDBOX,
        )
        .distinct()
        .scalar_subquery()
    )


async def _refresh_attributes(conn: AsyncConnection, learner_keys: Any) -> None:
    """Copy the learners' current attributes into their score rows (any event may follow a
    change: a profile answer, a new language, a deletion that clears the profile)."""
    s = learner_scores.c
    await conn.execute(
        update(learner_scores)
        .where(learners.c.learner_key == s.learner_key, s.learner_key.in_(learner_keys))
        .values({name: learners.c[name] for name in _ATTRIBUTES})
    )


async def _refresh_enrollments(
    conn: AsyncConnection, learner_keys: Any | None, teaching: Teaching
) -> None:
    """Write these learners' enrollment_progress rows again from the store (None: everyone's,
    into an emptied table): a completion, a new enrollment, a deletion, a new profile."""
    done = lesson_completions.c
    taught = [
        and_(done.course_id == course_id, done.lesson_id.in_(sorted(lessons)))
        for course_id, lessons in sorted(teaching.items())
        if lessons
    ]
    lessons_done = (
        select(func.count())
        .where(done.enrollment_id == enrollments.c.id, or_(false(), *taught))
        .scalar_subquery()
    )
    rows = (
        select(
            enrollments.c.id,
            learners.c.learner_key,
            enrollments.c.cohort_id,
            lessons_done,
            *(learners.c[name] for name in _ATTRIBUTES),
        )
        .select_from(enrollments.join(learners, learners.c.id == enrollments.c.learner_id))
        .where(learners.c.channel != _SANDBOX)
    )
    if learner_keys is not None:
        await conn.execute(
            delete(enrollment_progress).where(enrollment_progress.c.learner_key.in_(learner_keys))
        )
        rows = rows.where(learners.c.learner_key.in_(learner_keys))
    names = ["enrollment_id", "learner_key", "cohort_id", "lessons_done", *_ATTRIBUTES]
    await conn.execute(insert(enrollment_progress).from_select(names, rows))
