"""The shell around any figure: its table, chart data, notes, CSV, filters and language."""

from __future__ import annotations

import json
import re
from datetime import date

from bot.analytics.figures import Filters, Scope
from tests.web.console.conftest import UNAS_COHORT, ConsoleClient, FakePage


async def test_a_figure_is_a_captioned_table_with_header_cells_and_a_chart_island(
    console: ConsoleClient, overview: FakePage
) -> None:
    await console.sign_in("ada@example.org")
    page = await console.http.get("/console/overview")
    assert page.status_code == 200
    html = page.text
    assert "<caption>Cohorts</caption>" in html
    assert '<th scope="col" class="num">Learners</th>' in html
    assert re.search(r'<th scope="row" dir="auto">Nairobi</th>', html)
    assert ">1,234<" in html and ">25%<" in html and ">0.12<" in html and ">Dec 1, 2026<" in html
    assert ">–<" in html  # a missing value
    # The flagged row is marked in words, not by colour alone.
    assert '<tr class="flagged">' in html and "⚑ flagged" in html
    assert "2 groups of fewer than 5 learners are not shown" in html
    assert "Completion counts teaching lessons only." in html
    island = re.search(r'<script type="application/json" id="chart-cohorts">(.*?)</script>', html)
    assert island is not None
    chart = json.loads(island.group(1))
    assert chart["kind"] == "bar" and chart["x"][0] == "Nairobi"
    assert chart["series"] == [{"label": "Completion rate", "share": True, "values": [0.25, 0.5]}]
    assert '<script src="/console/static/uPlot.iife.min.js" defer></script>' in html
    assert overview.calls == [(Filters(), Scope(cohort_ids=None, is_admin=True))]


async def test_numbers_and_dates_follow_the_readers_locale(console: ConsoleClient) -> None:
    await console.sign_in("ada@example.org")
    html = (await console.http.get("/console/overview", headers={"Accept-Language": "fr"})).text
    assert "1\u202f234" in html and "25\u00a0%" in html and "0,12" in html
    assert "1 déc. 2026" in html


async def test_arabic_is_right_to_left(console: ConsoleClient) -> None:
    await console.sign_in("ada@example.org")
    html = (await console.http.get("/console/overview", headers={"Accept-Language": "ar"})).text
    assert '<html lang="ar" dir="rtl">' in html


async def test_filters_reach_the_figures_and_the_csv_link(
    console: ConsoleClient, overview: FakePage
) -> None:
    await console.sign_in("tom@example.org")
    query = "?since=2026-11-01&until=2026-11-30&cohort=1&course=digital-skills"
    html = (await console.http.get(f"/console/overview{query}")).text
    filters, scope = overview.calls[-1]
    assert filters == Filters(date(2026, 11, 1), date(2026, 11, 30), 1, "digital-skills")
    assert scope == Scope(cohort_ids=frozenset({1}), is_admin=False)
    assert 'href="/console/overview/cohorts.csv?since=2026-11-01&amp;until=2026-11-30' in html
    assert '<option value="1" selected>' in html


async def test_a_bad_filter_is_a_400_page_naming_the_field(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    for query, words in (
        ("since=yesterday", "Filter From: expected a date as YYYY-MM-DD, got yesterday"),
        ("since=2026-12-02&until=2026-12-01", "Filter To: the end date is before the start"),
        ("cohort=abc", "Filter Cohort: expected a cohort number, got abc"),
        ("course=nope", "Filter Course: no course has the id nope"),
    ):
        response = await console.http.get(f"/console/overview?{query}")
        assert response.status_code == 400, query
        assert words in response.text


async def test_the_csv_has_the_column_keys_the_raw_values_and_no_formulas(
    console: ConsoleClient,
) -> None:
    await console.sign_in("tom@example.org")
    response = await console.http.get("/console/overview/cohorts.csv?cohort=1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="overview-cohorts.csv"' in response.headers["content-disposition"]
    assert response.text.splitlines() == [
        "cohort,learners,completion,mean,last",
        "Nairobi,1234,0.25,0.1234,2026-12-01",
        '"\'=HYPERLINK(""x"")",7,0.5,-0.5,',
    ]


async def test_another_trainers_cohort_is_a_404_in_filters_and_downloads(
    console: ConsoleClient, overview: FakePage
) -> None:
    await console.sign_in("tom@example.org")
    for path in ("/console/overview", "/console/overview/cohorts.csv"):
        response = await console.http.get(f"{path}?cohort={UNAS_COHORT}")
        assert response.status_code == 404
    assert overview.calls == []  # nothing was computed for it
    await console.post("/console/sign-out", {})
    await console.sign_in("ada@example.org")
    assert (await console.http.get(f"/console/overview?cohort={UNAS_COHORT}")).status_code == 200


async def test_an_unknown_page_or_figure_is_a_404(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    assert (await console.http.get("/console/nowhere")).status_code == 404
    assert (await console.http.get("/console/overview/nothing.csv")).status_code == 404


async def test_pages_are_in_the_navigation_and_keep_to_their_own_assets(
    console: ConsoleClient,
) -> None:
    await console.sign_in("tom@example.org")
    response = await console.http.get("/console")
    assert '<a href="/console/overview">Overview</a>' in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    for asset in ("console.css", "console.js", "uPlot.iife.min.js", "uPlot.min.css"):
        assert (await console.http.get(f"/console/static/{asset}")).status_code == 200
