"""Hot statements of the SQLite runner, compiled once and run on the sqlite3 cursor directly.

`Connection.execute` costs about 150 µs of Python per statement on this kind of machine
(cache key, execution context, parameter and result processing) for about 50 µs of SQLite
work, and a dialogue turn runs six or seven statements. The statements a turn runs on every
message are marked with `hot`; on a SQLite file the runner's `SyncDb` runs them here: the
SQL, bind order and type processors are taken once from SQLAlchemy's own compilation per
set of parameter names, so the SQL and the values are exactly what SQLAlchemy would send.
Anything this path does not handle (a statement not marked hot, expanding or
callable-default parameters, RETURNING) goes through SQLAlchemy as before; PostgreSQL
always does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

S = TypeVar("S", bound=Executable)
Processor = Callable[[Any], Any] | None

_HOT: dict[int, Executable] = {}  # id -> the statement itself, which keeps the id valid


def hot(statement: S) -> S:
    """Mark a module-level statement as run on every message: `FastStatements` takes it."""
    _HOT[id(statement)] = statement
    return statement


class FastRow(tuple[Any, ...]):
    """A result row: by position like a tuple, and by column name like SQLAlchemy's Row."""

    __slots__ = ()
    _index: Mapping[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return {name: self[index] for name, index in self._index.items()}


class FastResult:
    """What the callers of hot statements read of a result: rows, first/one, rowcount."""

    def __init__(self, rows: list[FastRow], rowcount: int, lastrowid: int | None) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def __iter__(self) -> Iterator[FastRow]:
        return iter(self._rows)

    def all(self) -> list[FastRow]:
        """Every row."""
        return list(self._rows)

    def first(self) -> FastRow | None:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def one(self) -> FastRow:
        """The only row; an error if there are none or several."""
        if len(self._rows) != 1:
            raise exc.NoResultFound if not self._rows else exc.MultipleResultsFound
        return self._rows[0]


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    # Per bind position: the parameter name to read, or None for a value fixed at compile
    # time (a literal in the statement, a column's scalar default), then its processor.
    names: tuple[str | None, ...]
    fixed: tuple[Any, ...]
    processors: tuple[Processor, ...]
    row_type: type[FastRow] | None  # None: the statement returns no rows
    result_processors: tuple[Processor, ...]


class FastStatements:
    """Runs `hot` statements on a sqlite3 connection; one per runner (plans are per dialect)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._plans: dict[tuple[int, tuple[str, ...]], _Plan | None] = {}

    def execute(
        self, driver: sqlite3.Connection, statement: Executable, parameters: Any
    ) -> FastResult | None:
        """Run `statement` if it is hot and plannable: its result; else None (use SQLAlchemy)."""
        if id(statement) not in _HOT:
            return None
        many = isinstance(parameters, list)
        if many and not parameters:
            return None  # SQLAlchemy's own rule for an empty executemany applies
        first = parameters[0] if many else (parameters or {})
        if not isinstance(first, Mapping):
            return None
        key = (id(statement), tuple(first))
        plan = self._plans.get(key, _MISSING)
        if plan is _MISSING:
            plan = self._plans[key] = _plan(statement, self.dialect, tuple(first))
        if plan is None:
            return None
        rows_in = parameters if many else [first]
        try:
            values = [_bind(plan, row) for row in rows_in]
            if many:
                cursor = driver.executemany(plan.sql, values)
            else:
                cursor = driver.execute(plan.sql, values[0])
            rows = cursor.fetchall() if plan.row_type is not None else []
        except sqlite3.Error as error:
            # As SQLAlchemy raises it (IntegrityError, OperationalError, ...), for callers.
            raise exc.DBAPIError.instance(plan.sql, values, error, sqlite3.Error) from error
        fast_rows = [_row(plan, row) for row in rows] if rows else []
        return FastResult(fast_rows, cursor.rowcount, cursor.lastrowid)


_MISSING: Any = object()


def _bind(plan: _Plan, parameters: Mapping[str, Any]) -> list[Any]:
    values = []
    for name, fixed, processor in zip(plan.names, plan.fixed, plan.processors, strict=True):
        value = fixed if name is None else parameters[name]
        values.append(value if processor is None else processor(value))
    return values


def _row(plan: _Plan, row: Sequence[Any]) -> FastRow:
    assert plan.row_type is not None
    return plan.row_type(
        value if processor is None else processor(value)
        for value, processor in zip(row, plan.result_processors, strict=True)
    )


def _plan(statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
    """The compiled form of `statement` for these parameter names, or None if unsupported."""
    if not isinstance(statement, ClauseElement):
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if not isinstance(compiled, SQLCompiler) or not _plannable(compiled):
        return None
    prefetch = {column.key: column for column in compiled.insert_prefetch}
    names: list[str | None] = []
    fixed: list[Any] = []
    for name in compiled.positiontup or ():
        if name in keys:
            names.append(name)
            fixed.append(None)
            continue
        column = prefetch.get(name)
        default = column.default if column is not None else None
        if column is not None:
            if default is None or not getattr(default, "is_scalar", False):
                return None  # a callable default needs an execution context: SQLAlchemy's
            names.append(None)
            fixed.append(getattr(default, "arg", None))
            continue
        bind = compiled.binds.get(name)
        if bind is None or bind.required or bind.callable is not None:
            return None  # a parameter the caller did not give: let SQLAlchemy say so
        names.append(None)
        fixed.append(bind.effective_value)
    processors: list[Processor] = []
    for name in compiled.positiontup or ():
        processor = compiled._bind_processors.get(name)
        if processor is not None and not callable(processor):
            return None  # a tuple type's processors, per element: SQLAlchemy's
        processors.append(processor)
    row_type: type[FastRow] | None = None
    result_processors: tuple[Processor, ...] = ()
    if getattr(statement, "is_select", False):
        columns = compiled._result_columns
        labels = [column.keyname for column in columns]
        if len(set(labels)) != len(labels):
            return None
        row_type = type("Row", (FastRow,), {"__slots__": (), "_index": _index(labels)})
        result_processors = tuple(
            column.type._cached_result_processor(dialect, None) for column in columns
        )
    return _Plan(
        sql=compiled.string,
        names=tuple(names),
        fixed=tuple(fixed),
        processors=tuple(processors),
        row_type=row_type,
        result_processors=result_processors,
    )


def _index(labels: Sequence[str]) -> dict[str, int]:
    return {label: position for position, label in enumerate(labels)}


def _plannable(compiled: SQLCompiler) -> bool:
    return not (
        compiled.update_prefetch
        or getattr(compiled, "postfetch", None)  # only DML compilations have it
        or compiled.returning
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.escaped_bind_names
        or compiled.positiontup is None
    )
