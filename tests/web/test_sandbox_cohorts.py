"""Through /sandbox, a visitor joins the demo cohort and cohorts opened to it, never another."""

from __future__ import annotations

import pytest

from bot.runtime import ensure_demo_cohort
from bot.store.cohort_names import set_cohort_name
from tests.web.conftest import Served

VISITOR = "web-0123456789abcdef"


async def courses_of(served: Served) -> list[str]:
    return sorted(served.runtime.courses)


async def test_a_visitor_joins_the_demo_cohort(served: Served) -> None:
    replies = await served.say(VISITOR, "JOIN DEMO")

    assert replies[0] == "Welcome to Demo cohort!"


async def test_a_visitor_joins_a_cohort_a_trainer_opened_to_the_sandbox(served: Served) -> None:
    await served.runtime.dialogue.create_cohort(
        name="Try-out",
        join_code="TRY234",
        course_ids=await courses_of(served),
        open_to_sandbox=True,
    )

    replies = await served.say(VISITOR, "JOIN TRY234")

    assert replies[0] == "Welcome to Try-out!"


async def test_a_visitor_cannot_join_a_real_cohort_and_cannot_tell_it_exists(
    served: Served,
) -> None:
    await served.runtime.dialogue.create_cohort(
        name="Nairobi officials", join_code="NBO234", course_ids=await courses_of(served)
    )

    real = await served.say(VISITOR, "JOIN NBO234")
    unknown = await served.say(VISITOR, "JOIN NBO235")
    deep_link = await served.say("web-fedcba9876543210", "/start NBO234")
    deep_link_unknown = await served.say("web-abcdefabcdef0000", "/start NBO235")

    assert real == [text.replace("NBO235", "NBO234") for text in unknown]
    assert "No cohort has the code NBO234" in real[0]
    assert deep_link == deep_link_unknown
    assert not any("Nairobi officials" in text for text in real + deep_link)


@pytest.mark.parametrize(
    ("join", "welcome"),
    [
        # Today: "مرحبًا بك في Demo cohort!", the cohort's name left in English.
        ("انضم DEMO", "مرحبًا بك في مجموعة تجريبية!"),
        ("JIUNGE DEMO", "Karibu Kundi la majaribio!"),
        ("REJOINDRE DEMO", "Bienvenue dans Groupe de démonstration !"),
        ("UNIRSE DEMO", "¡Le damos la bienvenida a Grupo de demostración!"),
        ("ENTRAR DEMO", "Boas-vindas a Turma de demonstração!"),
        ("JOIN DEMO", "Welcome to Demo cohort!"),
    ],
)
async def test_the_demo_cohort_is_named_in_the_visitors_language(
    served: Served, join: str, welcome: str
) -> None:
    replies = await served.say(VISITOR, join)

    assert replies[0] == welcome


async def test_the_demo_cohort_keeps_a_name_a_trainer_gave_it(served: Served) -> None:
    runtime = served.runtime
    cohort_id = await ensure_demo_cohort(runtime)
    async with runtime.engine.begin() as conn:
        await set_cohort_name(conn, cohort_id, "sw", "Kundi la kujaribu")
    assert await ensure_demo_cohort(runtime) == cohort_id  # the next start

    replies = await served.say(VISITOR, "JIUNGE DEMO")

    assert replies[0] == "Karibu Kundi la kujaribu!"
