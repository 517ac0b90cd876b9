"""`cohort import`: validate a CSV of learners completely, then enrol them in one transaction.

Columns: name, phone, channel, locale and optionally time_zone. Telegram rows hold the
learner's chat id in the phone column. A learner already known (same channel and address)
keeps their status (a STOP stays a STOP) and their name, locale and time zone; only the
fields they do not have yet are filled in. Nobody is enrolled twice in a cohort.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import bindparam, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.domain import ChannelName, EventType, LearnerStatus
from bot.i18n import SHIPPED_LOCALES, fallback_chain, parse_locale
from bot.store.db import utcnow
from bot.store.events import EventRow, append_events
from bot.store.tables import enrollments, learners
from bot.trainers.cohorts import CohortError, CohortInfo, valid_time_zone
from bot.trainers.text import N_, CliUi, Text
from scheduler.timezones import learner_zone

REQUIRED_COLUMNS = ("name", "phone", "channel", "locale")
OPTIONAL_COLUMNS = ("time_zone",)
IMPORT_CHANNELS = (ChannelName.SMS, ChannelName.WHATSAPP, ChannelName.TELEGRAM)
BATCH_SIZE = 500
_CHANNELS = {channel.value: channel for channel in IMPORT_CHANNELS}
_CHAT_ID = re.compile(r"^-?\d{1,20}$")
MAX_NAME_LENGTH = 200  # learners.name is String(200)


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in the file: where, which field (the CSV column, as written), what."""

    file: str
    line: int
    field: str
    text: Text

    @property
    def message(self) -> str:
        """The explanation in English."""
        return str(self.text)

    def render(self, ui: CliUi) -> str:
        """`FILE:LINE: COLUMN: explanation`, the explanation in the trainer's language."""
        return f"{self.file}:{self.line}: {self.field}: {ui.render(self.text)}"

    def __str__(self) -> str:
        return self.render(CliUi.english())


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One valid learner row, normalised."""

    line: int
    name: str
    channel: ChannelName
    address: str  # E.164 number, or Telegram chat id
    locale: str
    time_zone: str | None  # the CSV's, if given


@dataclass(slots=True)
class ParsedCsv:
    """Valid rows, and the errors of the others (by line)."""

    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def bad_lines(self) -> list[int]:
        """Lines with at least one error."""
        return sorted({error.line for error in self.errors})


@dataclass(slots=True)
class ImportResult:
    """What an import did."""

    created: int = 0  # new learners
    updated: int = 0  # known learners whose empty fields were filled in
    enrolled: int = 0  # new enrollments in the cohort
    already_enrolled: int = 0
    zone_from_phone: int = 0  # rows without a time_zone whose number gave one
    zone_of_cohort: int = 0  # rows left on the cohort's time zone


def read_csv(path: Path, *, default_region: str | None = None) -> ParsedCsv:
    """Read and validate a whole CSV file; a file that cannot be read is one error on line 1."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = N_("not UTF-8 text: %(reason)s", reason=exc.reason)
        return ParsedCsv(errors=[RowError(str(path), 1, "file", problem)])
    return parse_csv(io.StringIO(text, newline=""), file=str(path), default_region=default_region)


def parse_csv(
    lines: Iterable[str], *, file: str = "<csv>", default_region: str | None = None
) -> ParsedCsv:
    """Validate every row: phone to E.164, channel, shipped locale, IANA time zone, duplicates."""
    parsed = ParsedCsv()
    reader = csv.reader(lines)
    records = iter(_records(reader, file, parsed.errors))
    first = next(records, None)
    if parsed.errors:
        return parsed
    header = None if first is None else first[1]
    if header is None:
        parsed.errors.append(RowError(file, 1, "header", N_("the file is empty")))
        return parsed
    columns = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    for name in missing:
        parsed.errors.append(RowError(file, 1, name, N_("missing column")))
    if missing:
        return parsed
    index = {
        name: columns.index(name)
        for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        if name in columns
    }
    seen: dict[tuple[str, str], int] = {}
    for line, record in records:
        if not any(cell.strip() for cell in record):
            continue  # blank lines, often at the end of spreadsheet exports
        cells = {name: record[i].strip() if i < len(record) else "" for name, i in index.items()}
        row, errors = _validate(cells, file=file, line=line, default_region=default_region)
        if row is not None:
            key = (row.channel.value, row.address)
            if key in seen:
                already = N_(
                    "%(phone)s is already on line %(line)s", phone=row.address, line=str(seen[key])
                )
                errors.append(RowError(file, line, "phone", already))
            else:
                seen[key] = line
        if errors:
            parsed.errors.extend(errors)
        elif row is not None:
            parsed.rows.append(row)
    return parsed


def _records(reader: Any, file: str, errors: list[RowError]) -> Iterable[tuple[int, list[str]]]:
    """(line, cells) of each record; a line the csv module cannot read ends the file there."""
    while True:
        start = reader.line_num + 1  # where the record begins (an open quote spans lines)
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # "field larger than field limit": most often a quote opened and never closed.
            problem = (
                N_(
                    "a cell is longer than %(limit)s characters (is a quote left open?)",
                    limit=csv.field_size_limit(),
                )
                if "field limit" in str(exc)
                else N_("not readable as CSV: %(reason)s", reason=str(exc))
            )
            errors.append(RowError(file, start, "file", problem))
            return
        yield reader.line_num, record


def _validate(
    cells: dict[str, str], *, file: str, line: int, default_region: str | None
) -> tuple[ImportRow | None, list[RowError]]:
    errors: list[RowError] = []

    def error(name: str, message: Text) -> None:
        errors.append(RowError(file, line, name, message))

    # PostgreSQL text cannot hold NUL, and no name, number or code has one.
    with_nul = [column for column, value in cells.items() if "\x00" in value]
    for column in with_nul:
        error(column, N_("contains a NUL byte"))
    if with_nul:
        return None, errors
    name = cells["name"]
    if not name:
        error("name", N_("empty"))
    elif len(name) > MAX_NAME_LENGTH:
        error(
            "name",
            N_(
                "longer than %(max)s characters (%(length)s)",
                max=MAX_NAME_LENGTH,
                length=len(name),
            ),
        )
    channel = _CHANNELS.get(cells["channel"].lower())
    if channel is None:
        choices = ", ".join(c.value for c in IMPORT_CHANNELS)
        error(
            "channel",
            N_(
                "unknown channel %(channel)s; expected one of %(choices)s",
                channel=repr(cells["channel"]),
                choices=choices,
            ),
        )
    address = _address(cells["phone"], channel, default_region, error)
    locale = _locale(cells["locale"], error)
    zone: str | None = None
    if cells.get("time_zone"):
        try:
            zone = valid_time_zone(cells["time_zone"], "time_zone")
        except CohortError:
            error(
                "time_zone",
                N_(
                    "unknown time zone %(zone)s (use an IANA name)",
                    zone=repr(cells["time_zone"]),
                ),
            )
    if errors or channel is None or address is None or locale is None:
        return None, errors
    return ImportRow(line, name, channel, address, locale, zone), errors


def _address(
    value: str,
    channel: ChannelName | None,
    default_region: str | None,
    error: Callable[[str, Text], None],
) -> str | None:
    if channel is ChannelName.TELEGRAM:
        if not _CHAT_ID.match(value):
            error(
                "phone",
                N_(
                    "a telegram row needs the learner's chat id (a number), got %(value)s",
                    value=repr(value),
                ),
            )
            return None
        return value
    if not value:
        error("phone", N_("empty"))
        return None
    try:
        number = phonenumbers.parse(value, None if value.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        if default_region:
            error("phone", N_("%(value)s is not a phone number", value=repr(value)))
        else:
            error(
                "phone",
                N_(
                    "%(value)s is not a phone number (start with +<country code> or pass "
                    "%(option)s)",
                    value=repr(value),
                    option="--default-region",
                ),
            )
        return None
    if not phonenumbers.is_valid_number(number):
        error("phone", N_("%(value)s is not a valid phone number", value=repr(value)))
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _locale(value: str, error: Callable[[str, Text], None]) -> str | None:
    shipped = ", ".join(SHIPPED_LOCALES)
    try:
        requested = parse_locale(value)
    except ValueError:
        error(
            "locale",
            N_(
                "unknown locale %(value)s; shipped: %(shipped)s", value=repr(value), shipped=shipped
            ),
        )
        return None
    # "pt-BR" is taught in "pt": the first shipped locale on its own fallback chain.
    for candidate in fallback_chain(requested, source=requested):
        if candidate in SHIPPED_LOCALES:
            return candidate
    error(
        "locale",
        N_(
            "locale %(value)s is not shipped; shipped: %(shipped)s",
            value=repr(value),
            shipped=shipped,
        ),
    )
    return None


def _insert(conn: AsyncConnection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert


async def import_learners(
    engine: AsyncEngine,
    cohort: CohortInfo,
    rows: Sequence[ImportRow],
    *,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Create or complete learners and enrol them, all in one transaction, in batches."""
    result = ImportResult()
    async with engine.begin() as conn:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            await _import_batch(conn, cohort, batch, result)
            if on_progress is not None:
                on_progress(len(batch))
    return result


_FILL_EMPTY = (
    learners.update()
    .where(learners.c.id == bindparam("learner_id"))
    .values(
        name=func.coalesce(learners.c.name, bindparam("new_name")),
        locale=func.coalesce(learners.c.locale, bindparam("new_locale")),
        time_zone=func.coalesce(learners.c.time_zone, bindparam("new_time_zone")),
        updated_at=bindparam("now"),
    )
)


async def _import_batch(
    conn: AsyncConnection,
    cohort: CohortInfo,
    batch: Sequence[ImportRow],
    result: ImportResult,
) -> None:
    now = utcnow()
    keys = [(row.channel.value, row.address) for row in batch]
    key_columns = tuple_(learners.c.channel, learners.c.address)
    known = {
        (r.channel, r.address): r
        for r in await conn.execute(
            select(
                learners.c.id,
                learners.c.channel,
                learners.c.address,
                learners.c.name,
                learners.c.locale,
                learners.c.time_zone,
            ).where(key_columns.in_(keys))
        )
    }
    # The CSV's zone, else the number's country's, else the cohort's (scheduler.timezones).
    zones = {
        row.line: learner_zone(
            row.time_zone, row.address, cohort.time_zone, channel=row.channel.value
        )
        for row in batch
    }
    # A known learner's empty zone is filled only from the CSV or the number: an empty zone
    # there means "my cohort's", which the cohort's own zone would merely freeze.
    own_zones: dict[int, str | None] = {}
    for row in batch:
        own_zones[row.line] = zones[row.line]
        if row.time_zone is None:
            if zones[row.line] == cohort.time_zone:
                result.zone_of_cohort += 1
                own_zones[row.line] = None
            else:
                result.zone_from_phone += 1
    new = [
        {
            "learner_key": str(uuid.uuid4()),
            "channel": row.channel.value,
            "address": row.address,
            "name": row.name,
            "locale": row.locale,
            "time_zone": zones[row.line],
            "status": LearnerStatus.ACTIVE.value,
            "created_at": now,
            "updated_at": now,
        }
        for row in batch
        if (row.channel.value, row.address) not in known
    ]
    if new:
        # DO NOTHING: a learner who wrote to the bot meanwhile is simply known already.
        insert = _insert(conn)(learners).on_conflict_do_nothing(
            index_elements=["channel", "address"]
        )
        await conn.execute(insert, new)
    fills = [
        {
            "learner_id": known[key].id,
            "new_name": row.name,
            "new_locale": row.locale,
            "new_time_zone": own_zones[row.line],
            "now": now,
        }
        for row, key in zip(batch, keys, strict=True)
        if key in known
        and (
            known[key].name is None
            or known[key].locale is None
            or (known[key].time_zone is None and own_zones[row.line] is not None)
        )
    ]
    if fills:
        await conn.execute(_FILL_EMPTY, fills)
        result.updated += len(fills)
    ids = {
        (r.channel, r.address): (int(r.id), r.learner_key)
        for r in await conn.execute(
            select(
                learners.c.id, learners.c.learner_key, learners.c.channel, learners.c.address
            ).where(key_columns.in_(keys))
        )
    }
    generated = {values["learner_key"] for values in new}
    result.created += sum(1 for _, key in ids.values() if key in generated)
    learner_ids = [ids[key][0] for key in keys]
    enrolled = {
        int(learner_id)
        for (learner_id,) in await conn.execute(
            select(enrollments.c.learner_id).where(
                enrollments.c.cohort_id == cohort.id, enrollments.c.learner_id.in_(learner_ids)
            )
        )
    }
    result.already_enrolled += len(enrolled)
    to_enrol = [
        (row, ids[key]) for row, key in zip(batch, keys, strict=True) if ids[key][0] not in enrolled
    ]
    if not to_enrol:
        return
    insert = _insert(conn)(enrollments).on_conflict_do_nothing(
        index_elements=["learner_id", "cohort_id"]
    )
    await conn.execute(
        insert,
        [
            {
                "learner_id": learner_id,
                "cohort_id": cohort.id,
                "course_id": cohort.course_ids[0],
                "attempt": 0,
                "status": "active",
                "reminders_sent": 0,
                "enrolled_at": now,
            }
            for _, (learner_id, _) in to_enrol
        ],
    )
    result.enrolled += len(to_enrol)
    await append_events(
        conn,
        [
            EventRow(
                type=EventType.ENROLLED,
                learner_key=learner_key,
                cohort_id=cohort.id,
                course_id=cohort.course_ids[0],
                channel=row.channel.value,
                detail={"source": "import"},
                occurred_at=now,
            )
            for row, (_, learner_key) in to_enrol
        ],
    )
