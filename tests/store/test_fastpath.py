"""Hot statements on the SQLite runner give what SQLAlchemy gives, and fall back when unsure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, create_engine, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.domain import ChannelName, EventType, OutboundMessage
from bot.store import repository as repo
from bot.store.deliveries import enqueue_replies
from bot.store.events import EventRow, append_events
from bot.store.fastpath import FastResult, FastStatements, hot
from bot.store.inbound import mark_processed
from bot.store.repository import SyncDb
from bot.store.tables import deliveries, events, metadata

NOW = datetime(2026, 11, 22, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def connection(tmp_path: Path) -> Iterator[Connection]:
    engine = create_engine(f"sqlite:///{tmp_path / 'fast.db'}")
    metadata.create_all(engine)
    with engine.connect() as conn, conn.begin():
        yield conn
    engine.dispose()


@pytest.fixture
def fast(connection: Connection) -> FastStatements:
    return FastStatements(connection.dialect)


class Spy(FastStatements):
    """Counts the statements the fast path took."""

    taken = 0

    def execute(self, driver: Any, statement: Any, parameters: Any) -> FastResult | None:
        result = super().execute(driver, statement, parameters)
        self.taken += result is not None
        return result


async def test_a_turn_reads_back_through_the_fast_path_what_sqlalchemy_reads(
    connection: Connection,
) -> None:
    spy = Spy(connection.dialect)
    fast_db, plain_db = SyncDb(connection, spy), SyncDb(connection)
    assert await mark_processed(fast_db, "sms", "SM1", received_at=NOW)  # type: ignore[arg-type]
    assert not await mark_processed(fast_db, "sms", "SM1", received_at=NOW)  # type: ignore[arg-type]
    learner = await repo.create_learner(plain_db, "sms", "+254700000001", NOW)
    await repo.create_cohort(
        plain_db, name="C", join_code="C1", course_ids=["c"], time_zone="UTC", now=NOW
    )
    cohort = await repo.find_cohort(plain_db, "C1")
    assert cohort is not None
    await repo.update_learner(fast_db, learner.id, {"locale": "sw", "last_inbound_at": NOW})
    await repo.create_enrollment(plain_db, learner.id, cohort, NOW)

    by_fast = await repo.load_learner(fast_db, "sms", "+254700000001")
    by_sqlalchemy = await repo.load_learner(plain_db, "sms", "+254700000001")
    assert by_fast == by_sqlalchemy
    assert by_fast is not None and by_fast[0].locale == "sw"
    assert by_fast[0].last_inbound_at == NOW  # an aware UTC datetime, as SQLAlchemy returns
    assert spy.taken == 4


async def test_inserts_match_sqlalchemys_rows_and_defaults(connection: Connection) -> None:
    fast_db, plain_db = SyncDb(connection, FastStatements(connection.dialect)), SyncDb(connection)
    learner = await repo.create_learner(plain_db, "sms", "+254700000002", NOW)
    message = OutboundMessage(ChannelName.SMS, "+254700000002", "Habari", "sw")
    for db in (fast_db, plain_db):
        await enqueue_replies(
            db, learner_id=learner.id, channel=ChannelName.SMS, messages=[message], now=NOW
        )
        await append_events(
            db,  # type: ignore[arg-type]
            [
                EventRow(
                    type=EventType.STOPPED,
                    learner_key=learner.learner_key,
                    detail={"a": 1},
                    occurred_at=NOW,
                )
            ],
        )
    rows = connection.execute(select(deliveries).order_by(deliveries.c.id)).mappings().all()
    columns = [c.key for c in deliveries.c if c.key not in ("id", "lesson_id")]
    assert [rows[0][c] for c in columns] == [rows[1][c] for c in columns]  # defaults included
    logged = connection.execute(select(events).order_by(events.c.id)).mappings().all()
    assert [dict(row, id=0) for row in logged[:1]] == [dict(row, id=0) for row in logged[1:]]
    assert logged[0]["detail"] == {"a": 1}


async def test_a_constraint_violation_raises_sqlalchemys_error(
    connection: Connection, fast: FastStatements
) -> None:
    db = SyncDb(connection, fast)
    learner = await repo.create_learner(db, "sms", "+254700000003", NOW)
    with pytest.raises(IntegrityError):
        await repo.update_learner(db, learner.id, {"learner_key": None})


async def test_statements_not_marked_hot_go_through_sqlalchemy(
    connection: Connection, fast: FastStatements
) -> None:
    assert fast.execute(_driver(connection), select(deliveries.c.id), {}) is None


async def test_a_missing_parameter_or_callable_default_falls_back(
    connection: Connection, fast: FastStatements
) -> None:
    table = Table(
        "counters",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String, default=lambda: "computed"),
    )
    table.create(connection)
    insert = hot(table.insert())
    assert fast.execute(_driver(connection), insert, {"id": 1}) is None  # callable default
    lookup = hot(select(table.c.id).where(table.c.id == bindparam("wanted")))
    assert fast.execute(_driver(connection), lookup, {}) is None  # SQLAlchemy names it
    found = fast.execute(_driver(connection), lookup, {"wanted": 1})
    assert found is not None and found.all() == []


async def test_rows_read_by_position_and_by_name(
    connection: Connection, fast: FastStatements
) -> None:
    table = Table(
        "pairs", MetaData(), Column("id", Integer, primary_key=True), Column("word", String)
    )
    table.create(connection)
    connection.execute(table.insert(), [{"id": 1, "word": "moja"}, {"id": 2, "word": "mbili"}])
    query = hot(select(table.c.id, table.c.word).order_by(table.c.id))
    result = fast.execute(_driver(connection), query, None)
    assert result is not None
    first = result.first()
    assert first is not None and first == (1, "moja") and first.word == "moja"
    assert first._mapping == {"id": 1, "word": "moja"}
    assert [row.id for row in fast.execute(_driver(connection), query, None) or []] == [1, 2]
    with pytest.raises(AttributeError):
        _ = first.missing


def _driver(connection: Connection) -> Any:
    return connection.connection.driver_connection


# What bot/store/fastpath.py reads of SQLAlchemy beyond its public API. The lock pins
# SQLAlchemy; an upgrade that renames or reshapes one of these fails here, by name, before any
# turn takes a wrong plan.
PRIVATE_COMPILED_ATTRIBUTES = {
    "_bind_processors": lambda value: (
        isinstance(value, dict) and all(callable(p) or p is None for p in value.values())
    ),
    "_result_columns": lambda value: (
        isinstance(value, list)
        and all(hasattr(entry, "keyname") and hasattr(entry, "type") for entry in value)
    ),
}
COMPILED_ATTRIBUTES = (
    "positiontup",
    "insert_prefetch",
    "update_prefetch",
    "returning",
    "literal_execute_params",
    "post_compile_params",
    "escaped_bind_names",
    "binds",
    "string",
)
BIND_ATTRIBUTES = ("required", "callable", "effective_value")


def test_sqlalchemy_still_has_every_private_attribute_the_fast_path_reads(
    connection: Connection,
) -> None:
    select_compiled = (
        select(deliveries.c.id, deliveries.c.due_at)
        .where(deliveries.c.id == bindparam("id"))
        .compile(dialect=connection.dialect)
    )
    insert_compiled = events.insert().compile(
        dialect=connection.dialect, column_keys=["learner_id", "type", "at"]
    )
    missing = [
        f"SQLCompiler.{name}"
        for compiled in (select_compiled, insert_compiled)
        for name in COMPILED_ATTRIBUTES
        if not hasattr(compiled, name)
    ]
    missing += [
        f"SQLCompiler.{name} (missing or reshaped)"
        for compiled in (select_compiled, insert_compiled)
        for name, shape in PRIVATE_COMPILED_ATTRIBUTES.items()
        if not shape(getattr(compiled, name, None))
    ]
    bind = select_compiled.binds["id"]
    missing += [f"BindParameter.{name}" for name in BIND_ATTRIBUTES if not hasattr(bind, name)]
    if not callable(getattr(deliveries.c.due_at.type, "_cached_result_processor", None)):
        missing.append("TypeEngine._cached_result_processor")
    assert missing == [], f"SQLAlchemy changed what the fast path reads: {missing}"
