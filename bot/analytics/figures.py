"""The shape every console figure takes: a table of rows, the chart drawn from it, its filters.

The analytics layer computes `Figure`s; the console renders any of them the same way (a chart,
the table beside it, a CSV download of the table), so no figure is computed in a template.
Titles, column labels and notes are untranslated message ids (marked with `N_`): the console
translates them in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from bot.lessons.loader import LoadedCourse

# How a column's values are shown: a count, a share in [0, 1], a plain number, a day, a moment.
ColumnKind = Literal["text", "count", "share", "number", "date", "datetime"]
ChartKind = Literal["bar", "stacked_bar", "line", "histogram"]
Cell = str | int | float | date | datetime | None

# Groups smaller than this are never shown on their own (the "Who" figures).
MIN_GROUP_SIZE = 5


def N_(message: str) -> str:
    """Mark a message id for extraction; the console translates it when it renders."""
    return message


@dataclass(frozen=True, slots=True)
class Filters:
    """What the reader asked for: a date range (inclusive, UTC days), a cohort, a course."""

    since: date | None = None
    until: date | None = None
    cohort_id: int | None = None
    course_id: str | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """Who is reading: the cohorts they may see (None: all, an admin) and what admins see."""

    cohort_ids: frozenset[int] | None
    is_admin: bool = False

    def allows(self, cohort_id: int) -> bool:
        """Whether this reader may see that cohort."""
        return self.cohort_ids is None or cohort_id in self.cohort_ids


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its key (also the CSV header), its label (a message id) and its kind."""

    key: str
    label: str
    kind: ColumnKind = "text"


@dataclass(frozen=True, slots=True)
class Chart:
    """How to draw a table: `x` is a column key, `series` the column keys plotted against it;
    `x_also` more column keys that name a point with `x` (q1 is in every lesson)."""

    kind: ChartKind
    x: str
    series: tuple[str, ...]
    x_also: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of a console page: a table, optionally its chart, and what was held back."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    chart: Chart | None = None
    note: str | None = None
    # Rows left out because their group had fewer than MIN_GROUP_SIZE learners.
    suppressed: int = 0
    # Row indexes the console highlights (e.g. questions most learners miss).
    flagged: frozenset[int] = field(default_factory=frozenset)

    def column(self, key: str) -> int:
        """The index of a column by its key."""
        for index, column in enumerate(self.columns):
            if column.key == key:
                return index
        raise KeyError(key)


def figure(
    key: str,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    **options: object,
) -> Figure:
    """A Figure from lists (rows are frozen into tuples)."""
    return Figure(
        key,
        title,
        tuple(columns),
        tuple(tuple(row) for row in rows),
        **options,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class FigureContext:
    """What figures need besides the database: the courses, the pseudonym key, SMS prices, now."""

    courses: Mapping[str, LoadedCourse]
    secret_key: str  # keys the learners' pseudonyms (bot.analytics.pseudonym)
    # Estimated price of one SMS segment per country (ISO 3166 alpha-2), from settings.
    segment_prices: Mapping[str, float]
    now: datetime


class FigureSource(Protocol):
    """Computes one console page's figures for a reader."""

    async def __call__(
        self, conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
    ) -> Sequence[Figure]: ...


@dataclass(frozen=True, slots=True)
class Page:
    """A console page: its URL segment (/console/<key>), its title (a message id), its figures."""

    key: str
    title: str
    build: FigureSource
