"""A learner's timeline and a cohort's printable report, behind the same roles as every page."""

from __future__ import annotations

from sqlalchemy import insert

from bot.analytics.pseudonym import pseudonym
from bot.domain import EventType
from bot.store.events import EventRow, append_events
from bot.store.tables import enrollments, learners
from tests.web.console.conftest import TOMS_COHORT, UNAS_COHORT, ConsoleClient, now

SECRET = "console-test-secret-key-0123456789abcdef"  # console_settings' key


async def a_learner_of_toms(console: ConsoleClient) -> str:
    """A learner in Tom's cohort who got lesson 1 and answered it: their pseudonym."""
    at = now()
    async with console.engine.begin() as conn:
        learner = (
            await conn.execute(
                insert(learners).values(
                    learner_key="timeline-key",
                    channel="sms",
                    address="+254700000123",
                    locale="sw",
                    status="active",
                    created_at=at,
                    updated_at=at,
                )
            )
        ).inserted_primary_key[0]
        await conn.execute(
            insert(enrollments).values(
                learner_id=learner,
                cohort_id=TOMS_COHORT,
                course_id="digital-skills",
                status="active",
                enrolled_at=at,
            )
        )
        await append_events(
            conn,
            [
                EventRow(
                    type=kind,
                    learner_key="timeline-key",
                    cohort_id=TOMS_COHORT,
                    course_id="digital-skills",
                    lesson_id="user-centred-design",
                    channel="sms",
                    locale="sw",
                    occurred_at=at,
                )
                for kind in (EventType.LESSON_DELIVERED, EventType.LESSON_COMPLETED)
            ],
        )
    return pseudonym(SECRET, "timeline-key")


async def test_a_trainer_finds_their_learners_timeline_and_no_one_elses(
    console: ConsoleClient,
) -> None:
    learner = await a_learner_of_toms(console)

    await console.sign_in("tom@example.org")
    found = await console.http.get(f"/console/learners?pseudonym={learner}")
    await console.post("/console/sign-out", {})
    await console.sign_in("una@example.org")
    hidden = await console.http.get(f"/console/learners?pseudonym={learner}")

    assert found.status_code == 200
    assert "user-centred-design" in found.text
    assert "+254700000123" not in found.text
    assert hidden.status_code == 404
    assert "user-centred-design" not in hidden.text


async def test_only_an_admin_may_reveal_the_address(console: ConsoleClient) -> None:
    learner = await a_learner_of_toms(console)

    await console.sign_in("tom@example.org")
    trainer = await console.http.get(f"/console/learners?pseudonym={learner}&reveal=1")
    await console.post("/console/sign-out", {})
    await console.sign_in("ada@example.org")
    admin = await console.http.get(f"/console/learners?pseudonym={learner}&reveal=1")

    assert "+254700000123" not in trainer.text
    assert "+254700000123" in admin.text


async def test_a_cohort_report_prints_its_figures_for_its_trainer_only(
    console: ConsoleClient,
) -> None:
    await console.sign_in("tom@example.org")
    own = await console.http.get(f"/console/cohorts/{TOMS_COHORT}/report")
    other = await console.http.get(f"/console/cohorts/{UNAS_COHORT}/report")

    assert own.status_code == 200
    assert own.text.count('<section class="figure"') >= 3
    assert "console.css" in own.text  # its @media print rules lay the report out on paper
    assert other.status_code == 404
