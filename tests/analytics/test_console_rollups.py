"""Figures read from the rollups equal the same figures read from the log itself.

With a date range the figures read the log (the rollups have no dates); a range that holds
every event must give what the rollups give without one.
"""

from __future__ import annotations

from datetime import date

import pytest

from bot.analytics.console import overview, questions, who
from bot.analytics.figures import Filters
from tests.analytics.conftest import Console
from tests.analytics.console_world import NOW

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVERY_DATE = Filters(since=date(2000, 1, 1), until=NOW.date())


@pytest.mark.parametrize("reader", ["admin", "tom"])
async def test_rolled_figures_equal_those_read_from_the_log(console: Console, reader: str) -> None:
    scope = getattr(console, reader)
    context = console.context
    async with console.engine.connect() as conn:
        assert await overview.completion_histograms(
            conn, Filters(), scope, context
        ) == await overview.completion_histograms(conn, EVERY_DATE, scope, context)
        rolled = await who.cube(conn, await who.enrolled_query(conn, Filters(), scope, context))
        logged = await who.cube(conn, await who.enrolled_query(conn, EVERY_DATE, scope, context))
        assert rolled, "the world has enrollments"
        assert {cell: tuple(row[5:]) for cell, row in rolled.items()} == {
            cell: tuple(row[5:]) for cell, row in logged.items()
        }
        rolled = await who.cube(conn, who.answers_query(Filters(), scope))
        logged = await who.cube(conn, who.answers_query(EVERY_DATE, scope))
        assert rolled, "the world has answers"
        assert {cell: tuple(row[5:]) for cell, row in rolled.items()} == {
            cell: tuple(row[5:]) for cell, row in logged.items()
        }
        by_rollup = await questions.discrimination(conn, Filters(), scope)
        by_log = await questions.discrimination_in_range(conn, EVERY_DATE, scope)
    assert by_rollup.keys() == by_log.keys()
    for item, value in by_log.items():
        assert by_rollup[item] == pytest.approx(value), item
