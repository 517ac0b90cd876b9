"""Any `Figure` as the console shows it: formatted cells, its chart's data, its CSV.

The analytics layer computes the figure; this module only formats it for the reader's
locale (Babel) and writes the chart's data as JSON for the page's script to draw. CSV cells
keep the values as computed (ISO dates, plain numbers), text cells defused against formulas.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import babel.numbers

from bot.analytics.csv_cells import defused  # the export's own rule, kept in one place
from bot.analytics.figures import MIN_GROUP_SIZE, Cell, Column, Figure
from bot.i18n import (
    format_date,
    format_datetime,
    format_number,
    format_percent,
    is_rtl,
    parse_locale,
)
from bot.trainers.text import CliUi

NUMERIC_KINDS = frozenset({"count", "share", "number"})
MISSING = "–"  # an en dash: a cell with no value (no answer yet, a group with no data)


@dataclass(frozen=True, slots=True)
class HeaderView:
    """A column header: its translated label and whether its cells are numbers."""

    label: str
    numeric: bool


@dataclass(frozen=True, slots=True)
class RowView:
    """One table row: formatted cells (the first is the row's header) and whether flagged."""

    cells: tuple[str, ...]
    flagged: bool


@dataclass(frozen=True, slots=True)
class FigureView:
    """A figure ready for the template."""

    key: str
    title: str
    headers: tuple[HeaderView, ...]
    rows: tuple[RowView, ...]
    has_flags: bool
    note: str | None
    suppressed: str | None
    chart_json: str | None  # the JSON island; None when the figure has no chart or no rows


def format_cell(value: Cell, column: Column, locale: str) -> str:
    """One value in the reader's locale: counts grouped, shares as percentages, dates long."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, datetime):
        return format_datetime(value, locale, "UTC")
    if isinstance(value, date):
        return format_date(value, locale)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        if column.kind == "share":
            return format_percent(value, locale)
        if column.kind == "number" and isinstance(value, float):
            # Two decimals at most: a mean gain of 0.1234 reads 0.12, and -0.004 reads 0, not -0.
            shown = round(value, 2) + 0.0
            return babel.numbers.format_decimal(shown, "#,##0.##", locale=parse_locale(locale))
        return format_number(value, locale)
    return str(value)


def figure_view(figure: Figure, ui: CliUi) -> FigureView:
    """The figure in the reader's language and locale."""
    t = ui.translations
    headers = tuple(
        HeaderView(t.gettext(column.label), column.kind in NUMERIC_KINDS)
        for column in figure.columns
    )
    rows = tuple(
        RowView(
            tuple(
                format_cell(value, column, ui.locale)
                for value, column in zip(row, figure.columns, strict=False)
            ),
            index in figure.flagged,
        )
        for index, row in enumerate(figure.rows)
    )
    suppressed = None
    if figure.suppressed:
        suppressed = ui.ngettext(
            "%(count)s group of fewer than %(min)s learners is not shown, "
            "so that nobody can be singled out",
            "%(count)s groups of fewer than %(min)s learners are not shown, "
            "so that nobody can be singled out",
            figure.suppressed,
            count=figure.suppressed,
            min=MIN_GROUP_SIZE,
        )
    return FigureView(
        key=figure.key,
        title=t.gettext(figure.title),
        headers=headers,
        rows=rows,
        has_flags=bool(figure.flagged),
        note=t.gettext(figure.note) if figure.note else None,
        suppressed=suppressed,
        chart_json=chart_json(figure, ui) if figure.chart is not None and figure.rows else None,
    )


def _plotted(value: Cell) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def chart_json(figure: Figure, ui: CliUi) -> str | None:
    """The chart's data for the page's script: x labels, and one series per plotted column."""
    chart = figure.chart
    if chart is None:
        return None
    t = ui.translations
    # x first: a long label is cut at its end, and x is what tells the points apart.
    naming = [figure.column(key) for key in (chart.x, *chart.x_also)]
    series = []
    for key in chart.series:
        index = figure.column(key)
        column = figure.columns[index]
        series.append(
            {
                "label": t.gettext(column.label),
                "share": column.kind == "share",
                "values": [_plotted(row[index]) for row in figure.rows],
            }
        )
    data = {
        "kind": chart.kind,
        "title": t.gettext(figure.title),
        "x": [
            " · ".join(format_cell(row[i], figure.columns[i], ui.locale) for i in naming)
            for row in figure.rows
        ],
        "series": series,
        "rtl": is_rtl(ui.locale),
    }
    return json_for_script(data)


def json_for_script(value: object) -> str:
    """JSON safe inside a <script> element ("</script>" or "<!--" cannot end it early)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)  # numbers we computed
    return defused(value)  # text may come from learners or authors: never a formula


def figure_csv(figure: Figure) -> Iterator[str]:
    """The figure's table as CSV lines: column keys as the header, values as computed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([defused(column.key) for column in figure.columns])
    yield buffer.getvalue()
    for row in figure.rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_csv_cell(value) for value in row])
        yield buffer.getvalue()
