"""CSV export of the completion log, streamed, with keyed pseudonyms in place of learners."""

from __future__ import annotations

import csv
import re
from collections.abc import Collection
from datetime import UTC, date, datetime, time
from typing import Any, TextIO

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

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
BATCH_SIZE = 1000  # rows fetched from the server-side cursor at a time

# A cell starting with one of these is run as a formula by spreadsheet programs (OWASP "CSV
# injection"). Learners type their profile, authors name lessons: every cell is defused with
# a leading apostrophe, except a plain whole number such as an E.164 phone number
# (+254712345678) or a group chat id (-100123): a spreadsheet reads it as a number, nothing
# runs, and the CSV keeps the address exactly as the providers write it.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)


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
    writer = csv.writer(out, lineterminator="\n")
    header = [*COLUMNS]
    if include_addresses:
        header.append(ADDRESS_COLUMN)
    if include_free_text:
        header.append(FREE_TEXT_COLUMN)
    writer.writerow(header)
    count = 0
    async with engine.connect() as conn:
        # A server-side cursor: the log may be millions of rows, memory stays flat.
        query = _query(since, cohort_id, cohort_ids, include_addresses, include_free_text)
        if not include_sandbox:
            query = query.where(not_sandbox())
        result = await conn.stream(query)
        async for partition in result.partitions(BATCH_SIZE):
            writer.writerows(
                _csv_row(row, secret_key, include_addresses, include_free_text) for row in partition
            )
            count += len(partition)
    return count


def _query(
    since: date | None,
    cohort_id: int | None,
    cohort_ids: Collection[int] | None,
    include_addresses: bool,
    include_free_text: bool = False,
) -> Select[Any]:
    columns = [
        events.c.occurred_at,
        events.c.type,
        events.c.learner_key,
        events.c.cohort_id,
        events.c.course_id,
        events.c.lesson_id,
        events.c.question_id,
        events.c.locale,
        events.c.channel,
        events.c.correct,
        events.c.attempt,
        events.c.detail,
        learners.c.status,
        learners.c.profile_role,
        learners.c.profile_country,
        learners.c.profile_gender,
    ]
    if include_addresses:
        columns.append(learners.c.address)  # not even fetched unless asked for
    if include_free_text:
        columns.append(_free_text().label("free_text"))  # nor are reflections
    query = (
        select(*columns)
        .select_from(events.outerjoin(learners, learners.c.learner_key == events.c.learner_key))
        .order_by(events.c.occurred_at, events.c.id)
    )
    if since is not None:
        query = query.where(events.c.occurred_at >= datetime.combine(since, time.min, UTC))
    if cohort_id is not None:
        query = query.where(events.c.cohort_id == cohort_id)
    if cohort_ids is not None:
        query = query.where(events.c.cohort_id.in_(sorted(cohort_ids)))
    return query


def _free_text() -> Any:
    """The stored response of an `answered` event's answer (the event keeps no free text)."""
    return (
        select(answers.c.response)
        .select_from(answers.join(enrollments, enrollments.c.id == answers.c.enrollment_id))
        .where(
            enrollments.c.learner_id == learners.c.id,
            enrollments.c.cohort_id == events.c.cohort_id,
            answers.c.course_id == events.c.course_id,
            answers.c.lesson_id == events.c.lesson_id,
            answers.c.question_id == events.c.question_id,
            answers.c.attempt == events.c.attempt,
        )
        .order_by(answers.c.id)
        .limit(1)
        .correlate(events, learners)
        .scalar_subquery()
    )


def not_sandbox() -> ColumnElement[bool]:
    """Events of learners who did not come through the public sandbox.

    A learner's channel never changes, so `learners.channel` marks the sandbox's learners;
    the event's own channel covers an event whose learner row is gone.
    """
    sandbox = ChannelName.SANDBOX.value
    return or_(learners.c.channel.is_(None), learners.c.channel != sandbox) & or_(
        events.c.channel.is_(None), events.c.channel != sandbox
    )


def _csv_row(
    row: Row[Any], secret_key: str, include_addresses: bool, include_free_text: bool = False
) -> list[str]:
    # A deleted learner keeps a tombstone (or no row at all): no profile, no address.
    present = row.status is not None and row.status != LearnerStatus.DELETED
    detail = row.detail if isinstance(row.detail, dict) else {}
    kind = detail.get("kind")
    cells = [
        row.occurred_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        row.type,
        pseudonym(secret_key, row.learner_key),
        _text(row.cohort_id),
        _text(row.course_id),
        _text(row.lesson_id),
        _text(row.question_id),
        _text(row.locale),
        _text(row.channel),
        "" if row.correct is None else ("true" if row.correct else "false"),
        _text(row.attempt),
        _text(kind),
        _text(detail.get("value")),
        _text(row.profile_role) if present else "",
        _text(row.profile_country) if present else "",
        _text(row.profile_gender) if present else "",
    ]
    if include_addresses:
        cells.append(_text(row.address) if present else "")
    if include_free_text:
        free_text = row.free_text if present and kind == "free_text" else None
        cells.append(_text(free_text))
    return [_defused(cell) for cell in cells]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _defused(value: str) -> str:
    if value.startswith(_FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value
