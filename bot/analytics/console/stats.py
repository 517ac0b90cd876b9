"""The statistics of console figures, from totals SQL has already summed (no scipy in the lock)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

_BETA_ITERATIONS = 300
_BETA_EPSILON = 3e-16


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, _BETA_ITERATIONS + 1):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < _BETA_EPSILON:
            break
    return result


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The fraction converges fast only on one side of the mean: use the symmetry on the other.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t distribution with `df` degrees of freedom."""
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t value with P(T <= t) = p (0 < p < 1), by bisection on `t_cdf`."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:  # 1 degree of freedom at p = 0.999 is already 318
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-10:
            break
    return (low + high) / 2.0


@dataclass(frozen=True, slots=True)
class MeanInterval:
    """A mean with its 95% confidence interval (None bounds: fewer than 2 values)."""

    n: int
    mean: float | None
    low: float | None
    high: float | None


def mean_interval(n: int, total: float, total_of_squares: float) -> MeanInterval:
    """Mean and 95% t interval of n values given their sum and sum of squares."""
    if n <= 0:
        return MeanInterval(0, None, None, None)
    mean = total / n
    if n < 2:
        return MeanInterval(n, mean, None, None)
    # max(): the sums come from floats and may round just below zero for equal values.
    variance = max(0.0, (total_of_squares - n * mean * mean) / (n - 1))
    half = t_quantile(0.975, n - 1) * math.sqrt(variance / n)
    return MeanInterval(n, mean, mean - half, mean + half)


def median_of_counts(histogram: Mapping[int, int]) -> float | None:
    """The median of values given as {value: how many}; None when there are none."""
    total = sum(histogram.values())
    if total == 0:
        return None
    ordered = sorted(histogram.items())

    def nth(index: int) -> int:  # the index-th value (0-based) in sorted order
        seen = 0
        for value, count in ordered:
            seen += count
            if index < seen:
                return value
        raise IndexError(index)

    if total % 2:
        return float(nth(total // 2))
    return (nth(total // 2 - 1) + nth(total // 2)) / 2.0


def share(part: float | None, whole: float | None) -> float | None:
    """part / whole, or None when there is no whole."""
    if part is None or not whole:
        return None
    return part / whole


def correlation(n: float, sx: float, sy: float, sxx: float, syy: float, sxy: float) -> float | None:
    """Pearson's r from n and the sums of x, y, x², y² and xy; None when a variable is constant."""
    if n < 2:
        return None
    vx = n * sxx - sx * sx
    vy = n * syy - sy * sy
    if vx <= 0 or vy <= 0:
        return None
    return (n * sxy - sx * sy) / math.sqrt(vx * vy)
