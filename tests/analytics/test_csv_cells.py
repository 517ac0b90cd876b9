"""CSV cells made once per value: the same bytes csv.writer writes, formulas defused."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from bot.analytics import csv_cells
from bot.analytics.csv_cells import CellCache, cell, defused


def written_by_csv(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


# Text with the characters that matter to CSV and to spreadsheets, and some that do not.
awkward_text = st.text(alphabet=st.sampled_from(list("ab1 ,\"'\r\n\t=+-@é٣")), max_size=8)


@given(st.lists(awkward_text, min_size=2, max_size=6))
def test_cells_joined_by_commas_are_what_csv_writer_writes(values: list[str]) -> None:
    line = ",".join(cell(value) for value in values) + "\n"

    assert line == written_by_csv([defused(value) for value in values])


def test_formulas_are_defused_and_plain_numbers_kept() -> None:
    assert cell('=HYPERLINK("http://x")') == '"\'=HYPERLINK(""http://x"")"'
    assert cell("@SUM(A1)") == "'@SUM(A1)"
    assert cell("+254712345678") == "+254712345678"
    assert cell("-100123") == "-100123"
    assert cell("-1-2") == "'-1-2"


def test_a_cache_makes_each_value_once_and_stays_bounded() -> None:
    cells = CellCache()

    assert (cells[None], cells[7], cells["=x"], cells["a,b"]) == ("", "7", "'=x", '"a,b"')
    assert cells[7] is cells[7]
    for n in range(csv_cells.CACHE_LIMIT + 10):
        cells[n]
    assert len(cells) <= csv_cells.CACHE_LIMIT
