"""The console's rollups, folded from the event log in id order, one chunk per transaction.

Rollups kept on write would add three or four statements to every graded answer, and a
dialogue turn runs six or seven: the dialogue's throughput would drop by far more than the
10% the console may cost it. Folding reads the log instead, behind the writers: the console
folds what arrived since the last fold before it reads a figure (so its figures are exact),
and the scheduler folds every few seconds so that tail stays small.

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
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, text, update
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
    question_days,
    question_sums,
    rollup_cursor,
)

CURSOR = "console"
CHUNK = 50_000  # ids per transaction: about 2 s of SQLite's writer at most, on a first fold
MAX_OPTIONS = 5  # the lesson format allows 2 to 5 options
_IN_BATCH = 500  # keys per IN list
_SANDBOX = ChannelName.SANDBOX.value

QuestionKey = tuple[str, str, str, int | None]  # course, lesson, question, cohort
ScoreKey = tuple[str, int | None, str]  # learner_key, cohort, course
_ATTRIBUTES = ATTRIBUTE_NAMES
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


def chosen_options(value: str | None) -> list[int]:
    """The option numbers (1-based) in a normalised answer: "1,3", "2", "true" (1), "false"."""
    if value in ("true", "false"):
        return [1 if value == "true" else 2]
    return [int(part) for part in (value or "").split(",") if part.strip().isdigit()]


@dataclass(slots=True)
class _Day:
    answered: int = 0
    right: int = 0
    options: list[int] = field(default_factory=lambda: [0] * MAX_OPTIONS)


@dataclass(slots=True)
class _Sums:
    n: int = 0
    sx: int = 0
    st: int = 0
    stt: int = 0
    sxt: int = 0

    def add(self, sign: int, x: int, t: int) -> None:
        self.n += sign
        self.sx += sign * x
        self.st += sign * t
        self.stt += sign * t * t
        self.sxt += sign * x * t


@dataclass(frozen=True, slots=True)
class _Answer:
    """A first attempt at a graded question, as the fold reads it."""

    id: int
    learner_key: str
    cohort_id: int | None
    course_id: str
    lesson_id: str
    question_id: str
    right: int
    day: date
    value: str | None


def _is_graded_first(row: Any) -> bool:
    return (
        row.type == EventType.ANSWERED.value
        and row.attempt == 1
        and row.correct is not None
        and row.channel != _SANDBOX
        and row.course_id is not None
        and row.lesson_id is not None
        and row.question_id is not None
    )


def _answer(row: Any) -> _Answer:
    detail = row.detail if isinstance(row.detail, dict) else {}
    value = detail.get("value")
    when: datetime = row.occurred_at
    return _Answer(
        id=int(row.id),
        learner_key=str(row.learner_key),
        cohort_id=None if row.cohort_id is None else int(row.cohort_id),
        course_id=str(row.course_id),
        lesson_id=str(row.lesson_id),
        question_id=str(row.question_id),
        right=1 if row.correct else 0,
        day=when.date(),
        value=None if value is None else str(value),
    )


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
        async with engine.begin() as conn:
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
            if not await _claim(conn, start, end, now):
                continue  # another folder took this chunk: read the cursor again
            await _fold_chunk(conn, start, end, teaching, int(cursor.enrollments_as_of))
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


async def _fold_chunk(
    conn: AsyncConnection, start: int, end: int, teaching: Teaching, enrollments_as_of: int
) -> None:
    tail = (
        await conn.execute(
            select(
                events.c.id,
                events.c.type,
                events.c.learner_key,
                events.c.cohort_id,
                events.c.course_id,
                events.c.lesson_id,
                events.c.question_id,
                events.c.channel,
                events.c.correct,
                events.c.attempt,
                events.c.detail,
                events.c.occurred_at,
            ).where(events.c.id > start, events.c.id <= end)
        )
    ).all()
    answers = [_answer(row) for row in tail if _is_graded_first(row)]
    await _add_question_days(conn, answers)
    scored = {(a.learner_key, a.cohort_id, a.course_id) for a in answers}
    history = await _first_answers(conn, sorted({key for key, _, _ in scored}), end)
    new_rows = await _update_sums_and_scores(conn, scored, history, start)
    # Only what can change a learner's attributes or enrollments asks for their rows again
    # (an answer, most of the log, does not): a new score row, a profile answer, a language.
    touched = new_rows | {
        str(row.learner_key)
        for row in tail
        if row.channel != _SANDBOX and row.type in _ATTRIBUTE_EVENTS
    }
    await _refresh_attributes(conn, touched)
    # Enrollments the last recount did not see yet: their learners' events are newer.
    changed = {
        str(row.learner_key)
        for row in tail
        if row.channel != _SANDBOX
        and row.type in _ENROLLMENT_EVENTS
        and int(row.id) > enrollments_as_of
    }
    for keys in _batches(sorted(changed)):
        await _refresh_enrollments(conn, keys, teaching)


async def _add_question_days(conn: AsyncConnection, answers: Sequence[_Answer]) -> None:
    """Add the chunk's first attempts to their (question, cohort, day) rows."""
    deltas: dict[tuple[str, str, str, int | None, date], _Day] = defaultdict(_Day)
    for a in answers:
        day = deltas[(a.course_id, a.lesson_id, a.question_id, a.cohort_id, a.day)]
        day.answered += 1
        day.right += a.right
        for option in chosen_options(a.value):
            if 1 <= option <= MAX_OPTIONS:
                day.options[option - 1] += 1
    if not deltas:
        return
    t = question_days.c
    existing: dict[tuple[str, str, str, int | None, date], Any] = {}
    for days in _batches(sorted({key[4] for key in deltas})):
        for found in (await conn.execute(select(question_days).where(t.day.in_(days)))).all():
            key = (found.course_id, found.lesson_id, found.question_id, found.cohort_id, found.day)
            existing[key] = found
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for key, delta in deltas.items():
        row = existing.get(key)
        options = {f"option_{n + 1}": count for n, count in enumerate(delta.options)}
        if row is None:
            course_id, lesson_id, question_id, cohort_id, on = key
            inserts.append(
                {
                    "course_id": course_id,
                    "lesson_id": lesson_id,
                    "question_id": question_id,
                    "cohort_id": cohort_id,
                    "day": on,
                    "answered": delta.answered,
                    "right_first": delta.right,
                    **options,
                }
            )
        else:
            updates.append(
                {
                    "row_id": row.id,
                    "answered": row.answered + delta.answered,
                    "right_first": row.right_first + delta.right,
                    **{name: getattr(row, name) + count for name, count in options.items()},
                }
            )
    if inserts:
        await conn.execute(insert(question_days), inserts)
    await _update_rows(conn, question_days, updates)


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


async def _first_answers(
    conn: AsyncConnection, learner_keys: Sequence[str], end: int
) -> dict[ScoreKey, list[tuple[int, QuestionKey, int]]]:
    """Every first graded attempt of these learners up to `end`: (id, question, right)."""
    found: dict[ScoreKey, list[tuple[int, QuestionKey, int]]] = defaultdict(list)
    t = events.c
    for keys in _batches(learner_keys):
        query = select(
            t.id, t.learner_key, t.cohort_id, t.course_id, t.lesson_id, t.question_id, t.correct
        ).where(
            t.learner_key.in_(keys),
            t.type == EventType.ANSWERED.value,
            t.attempt == 1,
            t.correct.is_not(None),
            t.id <= end,
            t.course_id.is_not(None),
            t.lesson_id.is_not(None),
            t.question_id.is_not(None),
        )
        for row in (await conn.execute(query)).all():
            cohort = None if row.cohort_id is None else int(row.cohort_id)
            item: QuestionKey = (row.course_id, row.lesson_id, row.question_id, cohort)
            found[(row.learner_key, cohort, row.course_id)].append(
                (int(row.id), item, 1 if row.correct else 0)
            )
    return found


async def _update_sums_and_scores(
    conn: AsyncConnection,
    scored: set[ScoreKey],
    history: dict[ScoreKey, list[tuple[int, QuestionKey, int]]],
    start: int,
) -> set[str]:
    """Replace each scored learner's share of the item sums, and set their score rows; the
    learners whose score rows are new.

    A learner's share of item i is (1, x_i, t, t^2, x_i t), t their score on the course;
    a new answer changes t, so their share of every item they answered changes: the fold
    takes off the share they had before this chunk and adds the one they have after it.
    """
    deltas: dict[QuestionKey, _Sums] = defaultdict(_Sums)
    totals: dict[ScoreKey, tuple[int, int]] = {}
    for key in scored:
        answers = history.get(key, [])
        before = [(item, x) for answer_id, item, x in answers if answer_id <= start]
        after = [(item, x) for _, item, x in answers]
        for sign, share in ((-1, before), (1, after)):
            t = sum(x for _, x in share)
            for item, x in share:
                deltas[item].add(sign, x, t)
        totals[key] = (len(after), sum(x for _, x in after))
    await _apply_sums(conn, deltas)
    return await _set_scores(conn, totals)


async def _apply_sums(conn: AsyncConnection, deltas: dict[QuestionKey, _Sums]) -> None:
    if not deltas:
        return
    existing = {
        (row.course_id, row.lesson_id, row.question_id, row.cohort_id): row
        for row in (await conn.execute(select(question_sums))).all()
    }  # one row per cohort and question: a few thousand at most
    names = ("n", "sx", "st", "stt", "sxt")
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for key, delta in deltas.items():
        row = existing.get(key)
        if row is None:
            course_id, lesson_id, question_id, cohort_id = key
            inserts.append(
                {
                    "course_id": course_id,
                    "lesson_id": lesson_id,
                    "question_id": question_id,
                    "cohort_id": cohort_id,
                    **{name: getattr(delta, name) for name in names},
                }
            )
        else:
            updates.append(
                {"row_id": row.id, **{n: getattr(row, n) + getattr(delta, n) for n in names}}
            )
    if inserts:
        await conn.execute(insert(question_sums), inserts)
    await _update_rows(conn, question_sums, updates)


async def _set_scores(conn: AsyncConnection, totals: dict[ScoreKey, tuple[int, int]]) -> set[str]:
    """Write the score rows; the learners of the rows inserted (their attributes still unset)."""
    if not totals:
        return set()
    t = learner_scores.c
    existing: dict[ScoreKey, int] = {}
    for keys in _batches(sorted({key for key, _, _ in totals})):
        query = select(t.id, t.learner_key, t.cohort_id, t.course_id).where(t.learner_key.in_(keys))
        for row in (await conn.execute(query)).all():
            existing[(row.learner_key, row.cohort_id, row.course_id)] = int(row.id)
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for key, (answered, right) in totals.items():
        row_id = existing.get(key)
        if row_id is None:
            learner_key, cohort_id, course_id = key
            inserts.append(
                {
                    "learner_key": learner_key,
                    "cohort_id": cohort_id,
                    "course_id": course_id,
                    "answered": answered,
                    "right_first": right,
                    "channel": "",  # set from the learner by _refresh_attributes
                }
            )
        else:
            updates.append({"row_id": row_id, "answered": answered, "right_first": right})
    if inserts:
        await conn.execute(insert(learner_scores), inserts)
    await _update_rows(conn, learner_scores, updates)
    return {str(row["learner_key"]) for row in inserts}


async def _refresh_attributes(conn: AsyncConnection, learner_keys: set[str]) -> None:
    """Copy the learners' current attributes into their score rows (any event may follow a
    change: a profile answer, a new language, a deletion that clears the profile)."""
    if not learner_keys:
        return
    statement = (
        update(learner_scores)
        .where(learner_scores.c.learner_key == bindparam("key"))
        .values({name: bindparam(f"new_{name}") for name in _ATTRIBUTES})
    )
    for keys in _batches(sorted(learner_keys)):
        with_scores = select(learner_scores.c.learner_key).where(
            learner_scores.c.learner_key.in_(keys)
        )
        query = select(learners.c.learner_key, *(learners.c[name] for name in _ATTRIBUTES)).where(
            learners.c.learner_key.in_(with_scores)
        )
        rows = [
            {"key": row.learner_key, **{f"new_{name}": row._mapping[name] for name in _ATTRIBUTES}}
            for row in (await conn.execute(query)).all()
        ]
        if rows:
            await conn.execute(statement, rows)


async def _refresh_enrollments(
    conn: AsyncConnection, learner_keys: Sequence[str] | None, teaching: Teaching
) -> None:
    """Write these learners' enrollment_progress rows again from the store (None: everyone's,
    into an emptied table): a completion, a new enrollment, a deletion, a new profile."""
    query = (
        select(
            enrollments.c.id,
            enrollments.c.cohort_id,
            learners.c.learner_key,
            *(learners.c[name] for name in _ATTRIBUTES),
        )
        .select_from(enrollments.join(learners, learners.c.id == enrollments.c.learner_id))
        .where(learners.c.channel != _SANDBOX)
    )
    done_query = select(
        lesson_completions.c.enrollment_id,
        lesson_completions.c.course_id,
        lesson_completions.c.lesson_id,
    )
    if learner_keys is not None:
        await conn.execute(
            delete(enrollment_progress).where(enrollment_progress.c.learner_key.in_(learner_keys))
        )
        query = query.where(learners.c.learner_key.in_(learner_keys))
    rows = (await conn.execute(query)).all()
    if not rows:
        return
    if learner_keys is not None:
        done_query = done_query.where(
            lesson_completions.c.enrollment_id.in_([int(row.id) for row in rows])
        )
    done: Counter[int] = Counter()
    for enrollment_id, course_id, lesson_id in (await conn.execute(done_query)).all():
        if lesson_id in teaching.get(course_id, ()):
            done[int(enrollment_id)] += 1
    values = [
        {
            "enrollment_id": int(row.id),
            "learner_key": row.learner_key,
            "cohort_id": int(row.cohort_id),
            "lessons_done": done[int(row.id)],
            **{name: row._mapping[name] for name in _ATTRIBUTES},
        }
        for row in rows
    ]
    for start in range(0, len(values), 10_000):
        await conn.execute(insert(enrollment_progress), values[start : start + 10_000])
