"""CSV cells for exports: defused against spreadsheet formulas, quoted, and made once per value."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

# A cell starting with one of these is run as a formula by spreadsheet programs (OWASP "CSV
# injection"). Learners type their profile, authors name lessons: every cell is defused with
# a leading apostrophe, except a plain whole number such as an E.164 phone number
# (+254712345678) or a group chat id (-100123): a spreadsheet reads it as a number, nothing
# runs, and the CSV keeps the address exactly as the providers write it.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
# A field without these is written by csv.writer (QUOTE_MINIMAL, ",") exactly as it is.
_NEEDS_QUOTING = re.compile(r'[",\r\n]')
# Distinct values remembered per cache: the caches stay small whatever the export's size.
CACHE_LIMIT = 50_000


def text(value: object) -> str:
    """A value as the text of its cell: None is empty."""
    return "" if value is None else str(value)


def defused(value: str) -> str:
    """`value`, with a leading apostrophe if a spreadsheet would run it as a formula."""
    if value.startswith(_FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def cell(value: str) -> str:
    """`value` defused, as csv.writer writes it between the commas of a row."""
    value = defused(value)
    if _NEEDS_QUOTING.search(value) is None:
        return value
    # Rare (a comma or a quote in a profile or a lesson id): let csv quote it, exactly.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([value])
    return buffer.getvalue()[:-1]


class CellCache(dict[Any, str]):
    """The CSV cell of each value of a column, made on first use and then looked up.

    A column's values repeat (event types, lesson ids, locales...), so each distinct value is
    defused and quoted once; past CACHE_LIMIT entries the cache starts again, so a column
    of unique values costs time, never memory.
    """

    __slots__ = ()

    def __missing__(self, value: Any) -> str:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        made = self[value] = cell(text(value))
        return made
