"""Questions, learning gain and survey pages of the hand-built world."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from bot.analytics.console.gain import gain
from bot.analytics.console.questions import questions
from bot.analytics.console.stats import t_quantile
from bot.analytics.console.survey import survey
from bot.analytics.figures import Filters
from tests.analytics.conftest import Console
from tests.analytics.console_world import (
    NORTH,
    POST,
    PRE,
    PRIVACY_Q1,
    UCD_FIRST,
)
from tests.analytics.test_console_overview import table

pytestmark = pytest.mark.asyncio(loop_scope="module")


def by_question(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["lesson"], row["question"]): row for row in rows}


async def test_facility_options_and_flags_at_the_first_attempt(console: Console) -> None:
    async with console.engine.connect() as conn:
        (found,) = await questions(conn, Filters(), console.tom, console.context)
    rows = by_question(table(found))
    ucd = rows[("user-centred-design", "q1")]
    # n00-n05 chose 2 (right), n06 and n07 chose 1 (then 2 at attempt 2), n08 chose 3.
    assert (ucd["answered"], ucd["right_first"]) == (9, 6)
    assert ucd["facility"] == pytest.approx(2 / 3)
    assert [ucd[f"option_{o}"] for o in range(1, 6)] == [2, 6, 1, 0, 0]
    assert ucd["prompt"].startswith("What is the first step")
    privacy = rows[("privacy-security-ethics", "q1")]
    # Multiple select: each option counts once per learner who ticked it.
    assert [privacy[f"option_{o}"] for o in range(1, 6)] == [4, 1, 4, 1, 3]
    assert privacy["facility"] == pytest.approx(2 / 6)
    true_false = rows[("privacy-security-ethics", "q2")]
    assert (true_false["facility"], true_false["option_2"]) == (1.0, 6)  # option 2: false
    # Flagged: most learners miss them (facility < 0.5 with at least 5 answers).
    flagged = {(found.rows[i][1], found.rows[i][2]) for i in found.flagged}
    assert ("privacy-security-ethics", "q1") in flagged
    assert ("pre-assessment", "q1") in flagged  # 7 of 15 right
    assert ("user-centred-design", "q1") not in flagged
    # Ratings and free text are not graded questions.
    assert ("pre-assessment", "q4") not in rows
    assert ("user-centred-design", "q2") not in rows


def first_attempt_scores() -> dict[str, dict[tuple[str, str], int]]:
    """Each North learner's graded first attempts, straight from the world's spec."""
    scores: dict[str, dict[tuple[str, str], int]] = {name: {} for name in NORTH}
    for lesson, spec in (("pre-assessment", PRE), ("post-assessment", POST)):
        for name, (items, _) in spec.items():
            if name in scores:
                for question, right in zip(("q1", "q2", "q3"), items, strict=True):
                    scores[name][(lesson, question)] = int(right)
    for name, value in UCD_FIRST.items():
        if name in scores:
            scores[name][("user-centred-design", "q1")] = int(value == "2")
    for name, value in PRIVACY_Q1.items():
        scores[name][("privacy-security-ethics", "q1")] = int(value == "1,3,5")
        scores[name][("privacy-security-ethics", "q2")] = 1
    return scores


async def test_discrimination_is_the_corrected_point_biserial(console: Console) -> None:
    async with console.engine.connect() as conn:
        (found,) = await questions(conn, Filters(), console.tom, console.context)
    rows = by_question(table(found))
    scores = first_attempt_scores()
    items = [("user-centred-design", "q1"), ("pre-assessment", "q1"), ("post-assessment", "q3")]
    for item in items:
        takers = [s for s in scores.values() if item in s]
        x = [s[item] for s in takers]
        rest = [sum(s.values()) - s[item] for s in takers]
        assert rows[item]["discrimination"] == pytest.approx(statistics.correlation(x, rest))
    # Everyone right: no spread, no correlation to report.
    assert rows[("privacy-security-ethics", "q2")]["discrimination"] is None


async def test_gain_is_paired_with_a_t_interval(console: Console) -> None:
    async with console.engine.connect() as conn:
        scores, confidence = await gain(conn, Filters(), console.tom, console.context)
    (row,) = table(scores)
    # n00-n03 took both: 1, 1, 2, 0 right before; 3, 2, 3, 2 after; gains 2, 1, 1, 2.
    half = t_quantile(0.975, 3) * math.sqrt(statistics.variance([2, 1, 1, 2]) / 4)
    assert (row["paired"], row["items"]) == (4, 3)
    assert (row["pre"], row["post"]) == (pytest.approx(4 / 12), pytest.approx(10 / 12))
    assert row["mean_gain"] == pytest.approx(1.5)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(1.5 - half), pytest.approx(1.5 + half))
    assert half == pytest.approx(0.9187, abs=1e-4)
    assert row["normalised_gain"] == pytest.approx((10 / 12 - 4 / 12) / (1 - 4 / 12))
    (lift,) = table(confidence)
    # Confidence 2, 3, 2, 1 before; 4, 4, 3, 4 after.
    half = t_quantile(0.975, 3) * math.sqrt(statistics.variance([2, 1, 1, 3]) / 4)
    assert (lift["rated"], lift["pre_rating"], lift["post_rating"]) == (4, 2.0, 3.75)
    assert lift["lift"] == pytest.approx(1.75)
    assert lift["ci_high"] == pytest.approx(1.75 + half)


async def test_gain_of_another_cohort_and_of_all(console: Console) -> None:
    async with console.engine.connect() as conn:
        (una, _) = await gain(conn, Filters(), console.una, console.context)
        (everyone, _) = await gain(conn, Filters(), console.admin, console.context)
    (south,) = table(una)
    # South: 3 right before, none after; the same loss for all: a zero-width interval.
    assert (south["paired"], south["mean_gain"], south["ci_low"]) == (3, -3.0, -3.0)
    assert south["normalised_gain"] is None  # nothing was left to learn
    (row,) = table(everyone)
    assert row["paired"] == 7  # the sandbox learner took both too, and is left out
    assert row["mean_gain"] == pytest.approx((6 - 9) / 7)


async def test_survey_ratings_and_free_text_for_admins_only(console: Console) -> None:
    async with console.engine.connect() as conn:
        tom = await survey(conn, Filters(), console.tom, console.context)
        admin = await survey(conn, Filters(), console.admin, console.context)
    assert [f.key for f in tom] == ["ratings"]
    useful, easy = table(tom[0])
    # Ratings 5, 4, 4, 3, 5 (the sandbox's 1 left out); then 2, 2, 1.
    assert [useful[f"rating_{r}"] for r in range(1, 6)] == [0, 0, 1, 2, 2]
    assert (useful["answered"], useful["mean"]) == (5, pytest.approx(4.2))
    assert [easy[f"rating_{r}"] for r in range(1, 6)] == [1, 2, 0, 0, 0]
    assert [f.key for f in admin] == ["ratings", "free_text"]
    texts = sorted(row["text"] for row in table(admin[1]))
    assert texts == ["Ask before collecting data", "I will test forms with users"]
