"""The plan job's statements, as driver-level SQL: a page of due enrollments, their planned
lessons, outbox inserts and next_due_at updates.

Why driver-level: on 100,000 rows SQLAlchemy's per-value type processing costs more than
SQLite's own work, so timestamps are converted here once per distinct value, in the exact
text form SQLAlchemy uses on SQLite (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC), and rows are plain
tuples. On PostgreSQL asyncpg takes aware datetimes and lists natively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import DeliveryStatus, LearnerStatus

ID_CHUNK = 5_000  # ids per `IN (...)`: well under SQLite's parameter limit
SCHEDULED_PRIORITY = 1  # after replies to learners (0)
_ACTIVE = "active"
_PENDING = DeliveryStatus.PENDING.value


class Dialect:
    """Placeholders and timestamp conversion for one backend."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.sqlite = conn.dialect.name == "sqlite"
        self._out: dict[datetime, Any] = {}
        self._in: dict[Any, datetime | None] = {}
        # SQLite would pick the (status, next_due_at) index, where every row is "active", and
        # then sort all of them for each page: walking the rowid in order is far cheaper.
        self.by_id = " NOT INDEXED" if self.sqlite else ""

    async def fetch(
        self, conn: AsyncConnection, sql: str, params: Sequence[Any]
    ) -> list[Sequence[Any]]:
        """All rows of a query, as tuples."""
        if self.sqlite:
            # aiosqlite directly, inside the same transaction: SQLAlchemy's Row objects cost
            # more than the query on 100,000 rows.
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            return list(await driver.execute_fetchall(sql, params))
        return list((await conn.exec_driver_sql(sql, tuple(params))).all())

    async def executemany(
        self, conn: AsyncConnection, sql: str, params: list[tuple[Any, ...]]
    ) -> int:
        """Run `sql` once per parameter tuple; the rows changed, or -1 if unknown."""
        if self.sqlite:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            cursor = await driver.executemany(sql, params)
            count = int(cursor.rowcount)
            await cursor.close()
            return count
        result = await conn.exec_driver_sql(sql, params)
        return int(result.rowcount) if result.rowcount is not None else -1

    def p(self, n: int) -> str:
        """The n-th (1-based) placeholder."""
        return "?" if self.sqlite else f"${n}"

    def ts(self, value: datetime) -> Any:
        """A bind value for a Timestamp column."""
        if not self.sqlite:
            return value
        found = self._out.get(value)
        if found is None:
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value.isoformat()}: pass an aware datetime")
            found = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            self._out[value] = found
        return found

    def from_ts(self, value: Any) -> datetime | None:
        """A Timestamp column's value as an aware UTC datetime."""
        if value is None or isinstance(value, datetime):
            return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
        found = self._in.get(value)
        if found is None:
            found = datetime.fromisoformat(value).replace(tzinfo=UTC)
            self._in[value] = found
        return found


async def due_page(
    conn: AsyncConnection, d: Dialect, *, after: int, now: datetime, limit: int
) -> list[Sequence[Any]]:
    """Due enrollments of active learners with id > after, by id: the `DueRow` columns."""
    # Stopped, paused and deleted learners are not even read: their next_due_at stays in the
    # past, and when they come back the misfire grace decides what is sent.
    sql = (
        "SELECT e.id, e.learner_id, e.cohort_id, e.course_id, e.lesson_id, e.question_index,"
        " e.next_due_at, e.awaiting_since, e.reminders_sent, l.channel, l.address, l.time_zone"
        f" FROM enrollments e{d.by_id} JOIN learners l ON l.id = e.learner_id"
        f" WHERE e.id > {d.p(1)} AND e.status = '{_ACTIVE}'"
        f" AND l.status = '{LearnerStatus.ACTIVE.value}'"
        f" AND (e.next_due_at IS NULL OR e.next_due_at <= {d.p(2)})"
        f" ORDER BY e.id LIMIT {d.p(3)}"
    )
    return await d.fetch(conn, sql, (after, d.ts(now), limit))


async def awaiting_page(
    conn: AsyncConnection, d: Dialect, *, after: int, since: datetime, limit: int
) -> list[Sequence[Any]]:
    """Enrollments with an open question sent at or before `since`, by id (`DueRow` columns)."""
    sql = (
        "SELECT e.id, e.learner_id, e.cohort_id, e.course_id, e.lesson_id, e.question_index,"
        " e.next_due_at, e.awaiting_since, e.reminders_sent, l.channel, l.address, l.time_zone"
        f" FROM enrollments e{d.by_id} JOIN learners l ON l.id = e.learner_id"
        f" WHERE e.id > {d.p(1)} AND e.status = '{_ACTIVE}'"
        f" AND l.status = '{LearnerStatus.ACTIVE.value}'"
        " AND e.question_index IS NOT NULL AND e.lesson_id IS NOT NULL"
        f" AND e.awaiting_since IS NOT NULL AND e.awaiting_since <= {d.p(2)}"
        f" ORDER BY e.id LIMIT {d.p(3)}"
    )
    return await d.fetch(conn, sql, (after, d.ts(since), limit))


async def planned_lessons(
    conn: AsyncConnection, d: Dialect, low: int, high: int, kind: str
) -> dict[int, dict[str, datetime]]:
    """Enrollment id -> {lesson id: due_at} in the outbox (of `kind`), for ids in [low, high]."""
    sql = (
        "SELECT enrollment_id, lesson_id, due_at FROM deliveries"
        f" WHERE enrollment_id BETWEEN {d.p(1)} AND {d.p(2)} AND kind = {d.p(3)}"
    )
    found: dict[int, dict[str, datetime]] = {}
    for enrollment_id, lesson_id, due_at in await d.fetch(conn, sql, (low, high, kind)):
        at = d.from_ts(due_at)
        assert at is not None
        found.setdefault(enrollment_id, {})[lesson_id] = at
    return found


_INSERT_COLUMNS = (
    "learner_id, enrollment_id, lesson_id, kind, channel, status, priority, due_at, attempts,"
    " created_at, updated_at"
)


async def insert_outbox(
    conn: AsyncConnection,
    d: Dialect,
    rows: Iterable[tuple[int, int, str, str, str, datetime]],
    now: datetime,
) -> int:
    """Insert (learner, enrollment, lesson, kind, channel, due_at) rows as pending outbox rows,
    doing nothing for any (enrollment, lesson, kind) that already exists; the number inserted
    (or of rows offered, where the driver cannot tell)."""
    stamp = d.ts(now)
    return await insert_outbox_rows(
        conn,
        d,
        [
            outbox_row(learner_id, enrollment_id, lesson_id, kind, channel, d.ts(due_at), stamp)
            for learner_id, enrollment_id, lesson_id, kind, channel, due_at in rows
        ],
    )


def outbox_row(
    learner_id: int,
    enrollment_id: int,
    lesson_id: str,
    kind: str,
    channel: str,
    due_at: Any,
    stamp: Any,
) -> tuple[Any, ...]:
    """One parameter tuple for insert_outbox_rows; `due_at` and `stamp` already `d.ts`'d."""
    return (
        learner_id,
        enrollment_id,
        lesson_id,
        kind,
        channel,
        _PENDING,
        SCHEDULED_PRIORITY,
        due_at,
        0,
        stamp,
        stamp,
    )


async def insert_outbox_rows(
    conn: AsyncConnection, d: Dialect, params: list[tuple[Any, ...]]
) -> int:
    """Insert prebuilt outbox_row tuples, doing nothing for an (enrollment, lesson, kind) that
    already exists; the number inserted (or of rows offered, where the driver cannot tell)."""
    if not params:
        return 0
    placeholders = ", ".join(d.p(n) for n in range(1, 12))
    sql = (
        f"INSERT INTO deliveries ({_INSERT_COLUMNS}) VALUES ({placeholders})"
        " ON CONFLICT (enrollment_id, lesson_id, kind) DO NOTHING"
    )
    count = await d.executemany(conn, sql, params)
    return count if count >= 0 else len(params)


async def insert_outbox_for(
    conn: AsyncConnection,
    d: Dialect,
    enrollment_ids: Sequence[int],
    *,
    lesson_id: str,
    kind: str,
    channel: str,
    due_at: datetime,
    now: datetime,
) -> int:
    """Insert one pending outbox row per enrollment, all alike but for the enrollment and its
    learner, doing nothing where (enrollment, lesson, kind) exists; the number inserted.

    One `INSERT ... SELECT` per chunk of ids: SQLite does in C what an executemany of prebuilt
    tuples does per row in Python, at half the cost.
    """
    inserted = 0
    head = (
        f"INSERT INTO deliveries ({_INSERT_COLUMNS})"
        " SELECT learner_id, id, {0}, {1}, {2}, {3}, {4}, {5}, 0, {6}, {7} FROM enrollments"
    ).format(*(d.p(n) for n in range(1, 9)))
    tail = "ORDER BY id ON CONFLICT (enrollment_id, lesson_id, kind) DO NOTHING"
    stamp = d.ts(now)
    fixed = (lesson_id, kind, channel, _PENDING, SCHEDULED_PRIORITY, d.ts(due_at), stamp, stamp)
    for start in range(0, len(enrollment_ids), ID_CHUNK):
        chunk = list(enrollment_ids[start : start + ID_CHUNK])
        if d.sqlite:
            sql = f"{head} WHERE id IN ({', '.join('?' * len(chunk))}) {tail}"
            result = await conn.exec_driver_sql(sql, (*fixed, *chunk))
        else:
            sql = f"{head} WHERE id = ANY($9::bigint[]) {tail}"
            result = await conn.exec_driver_sql(sql, (*fixed, chunk))
        count = result.rowcount
        inserted += count if count is not None and count >= 0 else len(chunk)
    return inserted


async def set_column(
    conn: AsyncConnection, d: Dialect, column: str, values: Mapping[int, Any]
) -> None:
    """Set an enrollments column: one UPDATE per distinct value and chunk of ids."""
    groups: dict[Any, list[int]] = {}
    for enrollment_id, value in values.items():
        groups.setdefault(value, []).append(enrollment_id)
    await set_column_groups(conn, d, column, groups)


async def set_column_groups(
    conn: AsyncConnection, d: Dialect, column: str, groups: Mapping[Any, Sequence[int]]
) -> None:
    """Set an enrollments column to each value for its ids: one UPDATE per value and chunk."""
    for value, ids in groups.items():
        bound = d.ts(value) if isinstance(value, datetime) else value
        for start in range(0, len(ids), ID_CHUNK):
            chunk = list(ids[start : start + ID_CHUNK])
            if d.sqlite:
                marks = ", ".join("?" * len(chunk))
                sql = f"UPDATE enrollments SET {column} = ? WHERE id IN ({marks})"
                await conn.exec_driver_sql(sql, (bound, *chunk))
            else:
                sql = f"UPDATE enrollments SET {column} = $1 WHERE id = ANY($2::bigint[])"
                await conn.exec_driver_sql(sql, (bound, chunk))


async def pause_learners(
    conn: AsyncConnection, d: Dialect, learner_ids: Sequence[int], now: datetime
) -> None:
    """Set learners paused (they resume when they reply)."""
    paused, active = LearnerStatus.PAUSED.value, LearnerStatus.ACTIVE.value
    for start in range(0, len(learner_ids), ID_CHUNK):
        chunk = list(learner_ids[start : start + ID_CHUNK])
        if d.sqlite:
            marks = ", ".join("?" * len(chunk))
            sql = (
                "UPDATE learners SET status = ?, updated_at = ?"
                f" WHERE status = ? AND id IN ({marks})"
            )
            await conn.exec_driver_sql(sql, (paused, d.ts(now), active, *chunk))
        else:
            sql = (
                "UPDATE learners SET status = $1, updated_at = $2"
                " WHERE status = $3 AND id = ANY($4::bigint[])"
            )
            await conn.exec_driver_sql(sql, (paused, now, active, chunk))
