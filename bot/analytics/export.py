"""CSV export of the completion log, streamed, with keyed pseudonyms in place of learners."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from contextlib import aclosing
from datetime import UTC, date, datetime, time
from typing import Any, TextIO

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.analytics.csv_cells import CACHE_LIMIT, CellCache, cell, text
from bot.analytics.driver_rows import driver_batches
from bot.analytics.pseudonym import pseudonym
from bot.domain import ChannelName, LearnerStatus
from bot.store.tables import answers, enrollments, events, learners

COLUMNS = (
    "occurred_at",
    "event",
    "learner",
    "cohort_id",
    "course_id",
    "lesson_id",
    "question_id",
    "locale",
    "channel",
    "correct",
    "attempt",
    "answer_kind",
    "value",
    "role",
    "country",
    "gender",
)
ADDRESS_COLUMN = "address"
FREE_TEXT_COLUMN = "free_text"
BATCH_SIZE = 5000  # rows fetched from the server-side cursor at a time
LEARNER_CACHE_LIMIT = 131_072  # learners remembered at once (~40 MB at most)
SANDBOX = ChannelName.SANDBOX.value


async def export_events_csv(
    engine: AsyncEngine,
    out: TextIO,
    *,
    secret_key: str,
    since: date | None = None,
    cohort_id: int | None = None,
    cohort_ids: Collection[int] | None = None,
    include_addresses: bool = False,
    include_free_text: bool = False,
    include_sandbox: bool = False,
) -> int:
    """Write the event log as CSV to `out`, oldest first; return the number of events written.

    `since` keeps events from that date's midnight UTC on; `cohort_id` keeps one cohort's,
    `cohort_ids` those of the cohorts a trainer owns (None: every event, for admins).
    Learners appear as HMAC pseudonyms of their learner_key. Raw addresses (phone numbers,
    chat ids) are added only with `include_addresses`, which admins must ask for explicitly.
    Free-text answers (reflections) are added only with `include_free_text`, for admins too.
    The public sandbox's learners and their events are left out unless `include_sandbox`.
    """
    header = [*COLUMNS]
    if include_addresses:
        header.append(ADDRESS_COLUMN)
    if include_free_text:
        header.append(FREE_TEXT_COLUMN)
    out.write(",".join(cell(name) for name in header) + "\n")
    query = _query(engine.dialect.name, since, cohort_id, cohort_ids, include_free_text)
    if not include_sandbox:
        # `not_sandbox()` in two halves: the event's channel here, the learner's in _Lines.
        query = query.where(_not_sandbox_event())
    lines = _Lines(secret_key, include_addresses, include_free_text, include_sandbox)
    count = 0
    # Two connections: the events stream on one, the learners they name looked up on the other.
    # The events come from a server-side cursor read straight from the driver: the log may
    # be millions of rows, memory stays flat, and no row goes through SQLAlchemy's results.
    async with (
        engine.connect() as conn,
        engine.connect() as lookups,
        aclosing(driver_batches(conn, query, BATCH_SIZE)) as batches,
    ):
        if since is None and cohort_id is None and cohort_ids is None:
            # The whole log names nearly every learner: read them all at once. A scoped
            # export (a trainer's cohorts, recent days) looks up only the ones it meets.
            await lines.learn_everyone(lookups)
        async for rows in batches:
            await lines.learn(lookups, rows)
            text_, written = lines.format(rows)
            out.write(text_)
            count += written
    return count


# What the export shows of one learner: their pseudonym cell, the "role,country,gender"
# cells (with ",address" when asked for), whether their data is still there (not deleted),
# and whether their events are left out (a sandbox visitor, unless the sandbox is included).
_Learner = tuple[str, str, bool, bool]


class _Lines:
    """Rows of the export query as CSV lines; each repeated value is turned into a cell once."""

    def __init__(
        self,
        secret_key: str,
        include_addresses: bool,
        include_free_text: bool,
        include_sandbox: bool,
    ) -> None:
        self.secret_key = secret_key
        self.include_addresses = include_addresses
        self.include_free_text = include_free_text
        self.include_sandbox = include_sandbox
        # learner_key -> _Learner: one lookup and one HMAC per learner, not per event.
        self.learners: dict[str, _Learner] = {}
        self.profiles: dict[str, str] = {}
        # detail JSON text -> (kind, kind cell, value cell): a few hundred distinct details.
        self.details: dict[str | None, tuple[Any, str, str]] = {}
        self.columns = [CellCache() for _ in range(8)]
        self.corrects = _BooleanCells()

    async def learn_everyone(self, conn: AsyncConnection) -> None:
        """Learn every learner in one pass over their table, if they all fit in the cache.

        Reading the table in order costs a fraction of looking each learner up by key;
        a learner who joins during the export is looked up by `learn`, as beyond the cache.
        """
        total = (await conn.execute(select(func.count()).select_from(learners))).scalar_one()
        if total > LEARNER_CACHE_LIMIT:
            return
        async with aclosing(driver_batches(conn, self._learner_query(), BATCH_SIZE)) as batches:
            async for rows in batches:
                self._remember(rows)

    async def learn(self, conn: AsyncConnection, rows: Sequence[Any]) -> None:
        """Look up, in one query, the learners of `rows` not met before."""
        keys = {row[2] for row in rows}
        if len(self.learners) + len(keys) > LEARNER_CACHE_LIMIT:
            self.learners.clear()  # memory stays bounded, whatever the number of learners
        missing = [key for key in keys if key not in self.learners]
        if not missing:
            return
        query = self._learner_query().where(learners.c.learner_key.in_(sorted(missing)))
        self._remember((await conn.execute(query)).all())
        for key in missing:
            if key not in self.learners:  # no learner row: the events outlived it
                self.learners[key] = (self._pseudonym(key), self._absent(), False, False)

    def _learner_query(self) -> Select[Any]:
        columns = [
            learners.c.learner_key,
            learners.c.status,
            learners.c.channel,
            learners.c.profile_role,
            learners.c.profile_country,
            learners.c.profile_gender,
        ]
        if self.include_addresses:
            columns.append(learners.c.address)  # not even fetched unless asked for
        return select(*columns)

    def _remember(self, rows: Sequence[Any]) -> None:
        for key, status, channel, *values in rows:
            # A deleted learner keeps a tombstone (or no row at all): no profile, no address.
            present = status != LearnerStatus.DELETED
            profile = ",".join(cell(text(v)) if present else "" for v in values)
            # Learners share a few hundred profiles: one string each, not one per learner.
            profile = self.profiles.setdefault(profile, profile)
            if len(self.profiles) >= CACHE_LIMIT:
                self.profiles.clear()
            sandbox = channel == SANDBOX and not self.include_sandbox
            self.learners[key] = (self._pseudonym(key), profile, present, sandbox)

    def _pseudonym(self, key: str) -> str:
        return cell(pseudonym(self.secret_key, key))

    def _absent(self) -> str:
        return "," * (3 if self.include_addresses else 2)

    def format(self, rows: Sequence[Any]) -> tuple[str, int]:
        """The CSV lines of `rows` (learners learnt), each ending in a newline, and their count."""
        learners_, details = self.learners, self.details
        types, cohorts, courses, lessons, questions, locales, channels, attempts = self.columns
        corrects = self.corrects
        free_text = self.include_free_text
        lines: list[str] = []
        append = lines.append
        for (
            at,
            type_,
            key,
            cohort,
            course,
            lesson,
            question,
            locale,
            channel,
            correct,
            attempt,
            detail,
            response,
        ) in rows:
            learner = learners_[key]
            if learner[3]:
                continue  # a sandbox visitor's event
            answer = details.get(detail)
            if answer is None:
                answer = self.detail(detail)
            # `at` is already "YYYY-MM-DDTHH:MM:SSZ" (see _utc_seconds): nothing to defuse.
            line = (
                f"{at},{types[type_]},{learner[0]},{cohorts[cohort]},{courses[course]},"
                f"{lessons[lesson]},{questions[question]},{locales[locale]},"
                f"{channels[channel]},{corrects[correct]},{attempts[attempt]},"
                f"{answer[1]},{answer[2]},{learner[1]}"
            )
            if free_text:
                # The reflection of a learner whose data is not deleted; never cached.
                shown = response if learner[2] and answer[0] == "free_text" else None
                line += "," + cell(text(shown))
            append(line)
        written = len(lines)
        lines.append("")
        return "\n".join(lines), written

    def detail(self, raw: str | None) -> tuple[Any, str, str]:
        """The answer kind and value cells of one stored `detail` JSON text."""
        parsed = None if raw is None else json.loads(raw)
        detail = parsed if isinstance(parsed, dict) else {}
        kind = detail.get("kind")
        if len(self.details) >= CACHE_LIMIT:
            self.details.clear()
        made = self.details[raw] = (kind, cell(text(kind)), cell(text(detail.get("value"))))
        return made


class _BooleanCells(dict[Any, str]):
    """The `correct` cell: empty, true or false (SQLite returns 0 and 1, PostgreSQL bools)."""

    __slots__ = ()

    def __missing__(self, value: Any) -> str:
        made = self[value] = "" if value is None else ("true" if value else "false")
        return made


def _query(
    dialect: str,
    since: date | None,
    cohort_id: int | None,
    cohort_ids: Collection[int] | None,
    include_free_text: bool,
) -> Select[Any]:
    # Columns come back as the driver gives them (no type processing per row): the times
    # already formatted by the database, `correct` as 0/1 or a bool, `detail` as JSON text.
    columns: list[Any] = [
        _utc_seconds(dialect).label("occurred_at"),
        events.c.type,
        events.c.learner_key,
        events.c.cohort_id,
        events.c.course_id,
        events.c.lesson_id,
        events.c.question_id,
        events.c.locale,
        events.c.channel,
        type_coerce(events.c.correct, Integer).label("correct"),
        events.c.attempt,
        cast(events.c.detail, Text).label("detail"),
    ]
    # Reflections are not even fetched unless asked for: a NULL keeps the rows' shape.
    columns.append((_free_text() if include_free_text else null()).label("free_text"))
    query = select(*columns).order_by(events.c.occurred_at, events.c.id)
    if since is not None:
        query = query.where(events.c.occurred_at >= datetime.combine(since, time.min, UTC))
    if cohort_id is not None:
        query = query.where(events.c.cohort_id == cohort_id)
    if cohort_ids is not None:
        query = query.where(events.c.cohort_id.in_(sorted(cohort_ids)))
    return query


def _utc_seconds(dialect: str) -> ColumnElement[str]:
    """`occurred_at` as "YYYY-MM-DDTHH:MM:SSZ" in UTC, seconds truncated, made by the database."""
    at = events.c.occurred_at
    if dialect == "postgresql":
        return type_coerce(
            func.to_char(
                func.timezone(literal_column("'UTC'"), at),
                literal_column('\'YYYY-MM-DD"T"HH24:MI:SS"Z"\''),
            ),
            String,
        )
    if dialect == "sqlite":
        # UtcDateTime stores UTC as "YYYY-MM-DD HH:MM:SS.ffffff" on SQLite (SQLAlchemy's
        # storage format): the date, a T, the time to the second, a Z.
        stored = type_coerce(at, String)
        return type_coerce(
            func.substr(stored, 1, 10)
            .concat(literal_column("'T'"))
            .concat(func.substr(stored, 12, 8))
            .concat(literal_column("'Z'")),
            String,
        )
    raise ValueError(f"export: unsupported database dialect {dialect!r}")


def _free_text() -> Any:
    """The stored response of a free-text answer's event (the event keeps no free text)."""
    response = (
        select(answers.c.response)
        .select_from(
            answers.join(enrollments, enrollments.c.id == answers.c.enrollment_id).join(
                learners, learners.c.id == enrollments.c.learner_id
            )
        )
        .where(
            learners.c.learner_key == events.c.learner_key,
            enrollments.c.cohort_id == events.c.cohort_id,
            answers.c.course_id == events.c.course_id,
            answers.c.lesson_id == events.c.lesson_id,
            answers.c.question_id == events.c.question_id,
            answers.c.attempt == events.c.attempt,
        )
        .order_by(answers.c.id)
        .limit(1)
        .correlate(events)
        .scalar_subquery()
    )
    # Only free-text answers show it: the subquery runs for those rows alone, not for
    # every event of the log (the export checks the kind again, in Python, from `detail`).
    return case((events.c.detail["kind"].as_string() == "free_text", response), else_=null())


def not_sandbox() -> ColumnElement[bool]:
    """Events of learners who did not come through the public sandbox.

    A learner's channel never changes, so `learners.channel` marks the sandbox's learners;
    the event's own channel covers an event whose learner row is gone.
    """
    return or_(learners.c.channel.is_(None), learners.c.channel != SANDBOX) & _not_sandbox_event()


def _not_sandbox_event() -> ColumnElement[bool]:
    return or_(events.c.channel.is_(None), events.c.channel != SANDBOX)
