"""The console's pure helpers: t quantiles, medians, correlation, suppression, countries."""

from __future__ import annotations

import statistics

import pytest

from bot.analytics.console.delivery import country_of_prefix
from bot.analytics.console.stats import (
    correlation,
    mean_interval,
    median_of_counts,
    t_cdf,
    t_quantile,
)
from bot.analytics.console.who import suppress


@pytest.mark.parametrize(
    ("df", "expected"),
    # Two-sided 95% critical values, from any table of Student's t.
    [(1, 12.7062), (2, 4.3027), (3, 3.1824), (10, 2.2281), (30, 2.0423), (1000, 1.9623)],
)
def test_t_quantile_matches_the_tables(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-4)
    assert t_cdf(expected, df) == pytest.approx(0.975, abs=1e-5)


def test_mean_interval_from_sums() -> None:
    values = [2.0, 1.0, 1.0, 2.0]
    found = mean_interval(len(values), sum(values), sum(v * v for v in values))
    half = 3.182446 * statistics.stdev(values) / 2
    assert (found.mean, found.low, found.high) == (
        1.5,
        pytest.approx(1.5 - half),
        pytest.approx(1.5 + half),
    )
    assert mean_interval(1, 3.0, 9.0).low is None  # one value has no spread
    assert mean_interval(0, 0.0, 0.0).mean is None


def test_median_of_counts() -> None:
    assert median_of_counts({0: 7, 1: 6, 2: 2, 8: 1}) == 1.0
    assert median_of_counts({1: 1, 4: 1}) == 2.5
    assert median_of_counts({}) is None


def test_correlation_from_sums_is_pearsons() -> None:
    x, y = [1, 0, 1, 1, 0], [3, 1, 2, 4, 2]
    sums = (
        len(x),
        sum(x),
        sum(y),
        sum(a * a for a in x),
        sum(b * b for b in y),
        sum(a * b for a, b in zip(x, y, strict=True)),
    )
    assert correlation(*map(float, sums)) == pytest.approx(statistics.correlation(x, y))
    assert correlation(3.0, 3.0, 6.0, 3.0, 14.0, 6.0) is None  # x is constant


def test_suppress_holds_back_the_next_smallest_when_one_is_small() -> None:
    assert suppress({"a": 9, "b": 6, "c": 2}) == {"b", "c"}
    assert suppress({"a": 9, "b": 3, "c": 2}) == {"b", "c"}
    assert suppress({"a": 9, "b": 5}) == set()
    assert suppress({"a": 4}) == {"a"}


def test_country_of_a_number_prefix() -> None:
    assert [country_of_prefix(p) for p in ("+221", "+254", "+1 2", "+44", None)] == [
        "SN",
        "KE",
        "US",
        "GB",
        "??",
    ]
