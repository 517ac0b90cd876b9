"""Formatting one figure for a reader: cells by kind and locale, the chart's JSON, its CSV."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from bot.analytics.figures import Chart, Column, figure
from bot.trainers.text import CliUi
from bot.web.console.render import chart_json, figure_csv, format_cell, json_for_script
from bot.web.console.throttle import SignInThrottle


def test_cells_are_formatted_by_their_kind_in_the_readers_locale() -> None:
    assert format_cell(1234567, Column("n", "N", "count"), "fr") == "1\u202f234\u202f567"
    assert format_cell(0.256, Column("s", "S", "share"), "en") == "26%"
    assert format_cell(0.256, Column("s", "S", "share"), "fr") == "26\u00a0%"
    assert format_cell(2 / 3, Column("x", "X", "number"), "es") == "0,67"
    assert format_cell(-0.004, Column("x", "X", "number"), "en") == "0"  # not "-0"
    assert format_cell(-0.006, Column("x", "X", "number"), "en") == "-0.01"
    assert format_cell(date(2026, 3, 5), Column("d", "D", "date"), "pt") == "5 de mar. de 2026"
    moment = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    assert format_cell(moment, Column("t", "T", "datetime"), "en") == "Mar 5, 2026, 2:30:00\u202fPM"
    assert format_cell(None, Column("n", "N", "count"), "en") == "–"
    assert format_cell(float("nan"), Column("x", "X", "number"), "en") == "–"
    assert format_cell("Nairobi", Column("c", "C"), "ar") == "Nairobi"


def test_the_chart_island_cannot_close_its_script_element() -> None:
    text = json_for_script({"x": ["</script><script>alert(1)</script>", "<!--"]})
    assert "<" not in text and ">" not in text
    assert json.loads(text) == {"x": ["</script><script>alert(1)</script>", "<!--"]}


def test_the_chart_data_has_the_rows_formatted_labels_and_raw_values() -> None:
    made = figure(
        "gain",
        "Gain",
        [Column("day", "Day", "date"), Column("n", "Learners", "count")],
        [[date(2026, 12, 1), 3], [date(2026, 12, 2), None]],
        chart=Chart("line", "day", ("n",)),
    )
    data = json.loads(chart_json(made, CliUi.english()) or "")
    assert data == {
        "kind": "line",
        "title": "Gain",
        "x": ["Dec 1, 2026", "Dec 2, 2026"],
        "series": [{"label": "Learners", "share": False, "values": [3.0, None]}],
        "rtl": False,
    }


def test_a_charts_points_are_named_by_every_column_it_names() -> None:
    made = figure(
        "questions",
        "Questions",
        [Column("lesson", "Lesson"), Column("question", "Question"), Column("f", "F", "share")],
        [["l1", "q1", 0.5], ["l2", "q1", 0.25]],
        chart=Chart("bar", "question", ("f",), x_also=("lesson",)),
    )
    data = json.loads(chart_json(made, CliUi.english()) or "")
    assert data["x"] == ["q1 · l1", "q1 · l2"]  # q1 is in every lesson


def test_csv_cells_keep_numbers_and_defuse_text() -> None:
    made = figure(
        "f",
        "F",
        [Column("name", "Name"), Column("n", "N", "count"), Column("x", "X", "number")],
        [["@SUM(A1)", -3, -0.25], ["+254712345678", 0, None]],
    )
    assert "".join(figure_csv(made)).splitlines() == [
        "name,n,x",
        "'@SUM(A1),-3,-0.25",
        "+254712345678,0,",  # a plain number stays as the provider writes it
    ]


def test_the_throttle_forgets_failures_once_the_window_has_passed() -> None:
    now = [0.0]
    throttle = SignInThrottle(max_failures=2, window_seconds=60, clock=lambda: now[0])
    throttle.failed("account:a", "address:1")
    throttle.failed("account:a", "address:1")
    assert throttle.blocked("account:a") and throttle.blocked("address:1")
    assert not throttle.blocked("account:b", "address:2")
    now[0] = 61.0
    assert not throttle.blocked("account:a", "address:1")
    throttle.failed("account:a", "address:1")
    throttle.succeeded("account:a", "address:1")  # that attempt was the right password
    throttle.failed("account:a", "address:1")
    assert not throttle.blocked("account:a", "address:1")
