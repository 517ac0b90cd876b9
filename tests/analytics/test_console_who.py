"""The "who" page: figures by learner attribute, small groups held back."""

from __future__ import annotations

import pytest

from bot.analytics.console.who import who
from bot.analytics.figures import Figure, Filters
from tests.analytics.conftest import Console
from tests.analytics.test_console_overview import table
from tests.analytics.test_console_questions import first_attempt_scores

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def figures_for(console: Console, scope_name: str) -> dict[str, Figure]:
    scope = getattr(console, scope_name)
    async with console.engine.connect() as conn:
        return {f.key: f for f in await who(conn, Filters(), scope, console.context)}


async def test_groups_by_gender_carry_every_figure(console: Console) -> None:
    found = await figures_for(console, "tom")
    rows = {row["group"]: row for row in table(found["by_gender"])}
    assert set(rows) == {"female", "male"} and found["by_gender"].suppressed == 0
    female, male = rows["female"], rows["male"]
    assert (female["learners"], female["active"], male["active"]) == (8, 5, 0)
    # Only n00 completed; lessons: n00 8, n01 2, n02 2, n03-n07 1 each; n08 1, the rest 0.
    assert female["completion_rate"] == pytest.approx(1 / 8)
    assert (female["mean_lessons"], male["mean_lessons"]) == (17 / 8, 1 / 8)
    scores = first_attempt_scores()
    women = [scores[f"n{i:02d}"] for i in range(8)]
    right = sum(sum(s.values()) for s in women) / sum(len(s) for s in women)
    assert female["facility"] == pytest.approx(right)
    assert (female["mean_gain"], female["normalised_gain"]) == (1.5, pytest.approx(0.75))
    assert male["mean_gain"] is None


async def test_groups_under_five_are_held_back(console: Console) -> None:
    found = await figures_for(console, "tom")
    # Roles: planner 6, clerk 5, not given 4, driver 1: the last two are held back.
    roles = found["by_role"]
    assert [(row["group"], row["learners"]) for row in table(roles)] == [
        ("planner", 6),
        ("clerk", 5),
    ]
    assert roles.suppressed == 2
    # Channels: Telegram 9, SMS 6, WhatsApp 1. WhatsApp alone would be the overview's 16
    # minus the others, so SMS is held back too.
    channels = found["by_channel"]
    assert [row["group"] for row in table(channels)] == ["telegram"]
    assert channels.suppressed == 2
    assert [row["group"] for row in table(found["by_country"])] == ["KE", "SN"]


async def test_who_for_all_cohorts_leaves_the_sandbox_out(console: Console) -> None:
    found = await figures_for(console, "admin")
    rows = {row["group"]: row["learners"] for row in table(found["by_gender"])}
    assert rows == {"female": 8 + 3, "male": 8}  # South's 3 women; not the sandbox learner
    # Swahili (South's 3) is held back, and French (6) with it, the next smallest.
    locales = {row["group"]: row["learners"] for row in table(found["by_locale"])}
    assert (locales, found["by_locale"].suppressed) == ({"en": 10}, 2)
