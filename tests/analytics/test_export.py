"""CSV export of the event log: filters, pseudonyms, profiles, and deleted learners."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.export import export_events_csv
from bot.analytics.pseudonym import pseudonym
from bot.domain import ChannelName, EventType
from bot.store.events import EventRow, append_events
from bot.store.tables import answers, learners
from tests.store.rows import insert_cohort, insert_enrollment, insert_learner

KEY = "export-test-secret-key"


async def export(engine: AsyncEngine, **options: Any) -> tuple[int, str, list[dict[str, str]]]:
    out = io.StringIO()
    count = await export_events_csv(engine, out, secret_key=KEY, **options)
    text = out.getvalue()
    return count, text, list(csv.DictReader(io.StringIO(text)))


async def seed(engine: AsyncEngine) -> dict[str, Any]:
    """Two learners in two cohorts, over three days; the second answers in Swahili by SMS."""
    async with engine.begin() as conn:
        amina = await insert_learner(
            conn,
            channel="telegram",
            address="555000111",
            profile_role="planner",
            profile_country="KE",
            profile_gender="female",
        )
        juma = await insert_learner(conn, channel="sms", address="+254700000002")
        await append_events(
            conn,
            [
                EventRow(
                    type=EventType.ENROLLED,
                    learner_key=amina["learner_key"],
                    cohort_id=1,
                    course_id="digital-skills",
                    channel=ChannelName.TELEGRAM,
                    occurred_at=datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
                ),
                EventRow(
                    type=EventType.ENROLLED,
                    learner_key=juma["learner_key"],
                    cohort_id=2,
                    course_id="digital-skills",
                    channel=ChannelName.SMS,
                    occurred_at=datetime(2024, 5, 2, 8, 0, tzinfo=UTC),
                ),
                EventRow(
                    type=EventType.ANSWERED,
                    learner_key=juma["learner_key"],
                    cohort_id=2,
                    course_id="digital-skills",
                    lesson_id="user-centred-design",
                    question_id="q1",
                    locale="sw",
                    channel=ChannelName.SMS,
                    correct=True,
                    attempt=2,
                    occurred_at=datetime(2024, 5, 3, 23, 59, 59, tzinfo=UTC),
                ),
            ],
        )
    return {"amina": amina, "juma": juma}


async def test_export_writes_one_pseudonymous_row_per_event(engine: AsyncEngine) -> None:
    learners_ = await seed(engine)

    count, text, rows = await export(engine)

    assert count == 3
    assert text.splitlines()[0] == (
        "occurred_at,event,learner,cohort_id,course_id,lesson_id,question_id,locale,channel,"
        "correct,attempt,answer_kind,value,role,country,gender"
    )
    assert rows[0] == {
        "occurred_at": "2024-05-01T08:00:00Z",
        "event": "enrolled",
        "learner": pseudonym(KEY, learners_["amina"]["learner_key"]),
        "cohort_id": "1",
        "course_id": "digital-skills",
        "lesson_id": "",
        "question_id": "",
        "locale": "",
        "channel": "telegram",
        "correct": "",
        "attempt": "",
        "answer_kind": "",
        "value": "",
        "role": "planner",
        "country": "KE",
        "gender": "female",
    }
    answered = rows[2]
    assert answered["event"] == "answered"
    assert answered["learner"] == pseudonym(KEY, learners_["juma"]["learner_key"])
    assert (answered["locale"], answered["correct"], answered["attempt"]) == ("sw", "true", "2")
    assert (answered["role"], answered["country"], answered["gender"]) == ("", "", "")
    for learner in learners_.values():
        assert learner["address"] not in text
        assert learner["learner_key"] not in text


async def test_export_filters_by_since_and_cohort(engine: AsyncEngine) -> None:
    await seed(engine)

    since_count, _, since_rows = await export(engine, since=date(2024, 5, 2))
    cohort_count, _, cohort_rows = await export(engine, cohort_id=1)
    both_count, _, _ = await export(engine, since=date(2024, 5, 2), cohort_id=1)
    late_count, _, late_rows = await export(engine, since=date(2024, 5, 3))

    assert since_count == 2
    assert [row["occurred_at"] for row in since_rows] == [
        "2024-05-02T08:00:00Z",
        "2024-05-03T23:59:59Z",
    ]
    assert (cohort_count, [row["cohort_id"] for row in cohort_rows]) == (1, ["1"])
    assert both_count == 0
    assert (late_count, [row["event"] for row in late_rows]) == (1, ["answered"])


async def test_addresses_appear_only_when_asked_for(engine: AsyncEngine) -> None:
    learners_ = await seed(engine)

    _, text, rows = await export(engine, include_addresses=True)

    assert text.splitlines()[0].endswith(",gender,address")
    assert [row["address"] for row in rows] == [
        learners_["amina"]["address"],
        learners_["juma"]["address"],
        learners_["juma"]["address"],
    ]


async def test_a_deleted_learner_keeps_events_but_no_profile_or_address(
    engine: AsyncEngine,
) -> None:
    learners_ = await seed(engine)
    amina = learners_["amina"]
    async with engine.begin() as conn:
        # A tombstone: status deleted, personal data gone, learner_key kept.
        await conn.execute(
            update(learners)
            .where(learners.c.id == amina["id"])
            .values(status="deleted", address=None, profile_role=None)
        )
        await conn.execute(learners.delete().where(learners.c.id == learners_["juma"]["id"]))

    count, text, rows = await export(engine, include_addresses=True)

    assert count == 3
    assert rows[0]["learner"] == pseudonym(KEY, amina["learner_key"])
    for row in rows:
        assert (row["role"], row["country"], row["gender"], row["address"]) == ("", "", "", "")
    assert "KE" not in text and "female" not in text


async def test_profile_text_cannot_become_a_spreadsheet_formula(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        learner = await insert_learner(conn, profile_role='=HYPERLINK("http://x")')
        await append_events(
            conn, [EventRow(type=EventType.PROFILE_UPDATED, learner_key=learner["learner_key"])]
        )

    _, _, rows = await export(engine)

    assert rows[0]["role"] == '\'=HYPERLINK("http://x")'


async def test_export_streams_more_rows_than_one_batch(engine: AsyncEngine) -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await append_events(
            conn,
            [
                EventRow(type=EventType.LESSON_DELIVERED, learner_key=f"k{n}", occurred_at=at)
                for n in range(2500)
            ],
        )

    count, _, rows = await export(engine)

    assert count == len(rows) == 2500
    assert len({row["learner"] for row in rows}) == 2500


async def test_every_column_is_defused_but_numbers_stay_numbers(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        learner = await insert_learner(
            conn, address="+254712345678", profile_country="@S", profile_gender="-x"
        )
        group = await insert_learner(conn, channel="telegram", address="-100123456")
        await append_events(
            conn,
            [
                EventRow(
                    type=EventType.ANSWERED,
                    learner_key=learner["learner_key"],
                    lesson_id="=cmd|'/c calc'!A1",
                    question_id="+1+cmd",
                    locale="\tfr",
                ),
                EventRow(type=EventType.ENROLLED, learner_key=group["learner_key"]),
            ],
        )

    _, _, rows = await export(engine, include_addresses=True)

    first, second = rows
    assert first["lesson_id"] == "'=cmd|'/c calc'!A1"
    assert first["question_id"] == "'+1+cmd"
    assert first["locale"] == "'\tfr"
    assert (first["country"], first["gender"]) == ("'@S", "'-x")
    # An E.164 number or a chat id is a plain number to a spreadsheet: kept exactly.
    assert first["address"] == "+254712345678"
    assert second["address"] == "-100123456"


async def test_cohort_ids_keep_only_those_cohorts(engine: AsyncEngine) -> None:
    await seed(engine)

    count, _, rows = await export(engine, cohort_ids=[2])
    none_count, _, _ = await export(engine, cohort_ids=[])

    assert (count, {row["cohort_id"] for row in rows}) == (2, {"2"})
    assert none_count == 0  # a trainer without cohorts exports nothing


async def seed_sandbox_visitor(engine: AsyncEngine) -> dict[str, Any]:
    """A /sandbox visitor who joined cohort 1 and answered, beside the seeded learners."""
    async with engine.begin() as conn:
        visitor = await insert_learner(conn, channel="sandbox", address="web-0123456789abcdef")
        await append_events(
            conn,
            [
                EventRow(
                    type=event_type,
                    learner_key=visitor["learner_key"],
                    cohort_id=1,
                    course_id="digital-skills",
                    channel=ChannelName.SANDBOX,
                    occurred_at=datetime(2024, 5, 2, 9, 0, tzinfo=UTC),
                )
                for event_type in (EventType.ENROLLED, EventType.ANSWERED)
            ],
        )
    return visitor


async def test_sandbox_learners_and_their_events_are_left_out_by_default(
    engine: AsyncEngine,
) -> None:
    await seed(engine)
    visitor = await seed_sandbox_visitor(engine)

    count, _, rows = await export(engine)
    cohort_count, _, cohort_rows = await export(engine, cohort_id=1)

    assert count == 3 and cohort_count == 1
    sandbox_pseudonym = pseudonym(KEY, visitor["learner_key"])
    assert sandbox_pseudonym not in {row["learner"] for row in rows + cohort_rows}
    assert {row["channel"] for row in rows} == {"telegram", "sms"}


async def test_include_sandbox_adds_them_back(engine: AsyncEngine) -> None:
    await seed(engine)
    visitor = await seed_sandbox_visitor(engine)

    count, _, rows = await export(engine, include_sandbox=True)

    assert count == 5
    visitor_rows = [r for r in rows if r["learner"] == pseudonym(KEY, visitor["learner_key"])]
    assert [(r["event"], r["channel"]) for r in visitor_rows] == [
        ("enrolled", "sandbox"),
        ("answered", "sandbox"),
    ]


async def seed_answers(engine: AsyncEngine) -> dict[str, Any]:
    """A learner's survey: a rating and a reflection, in the answers table and the log."""
    at = datetime(2024, 5, 4, 9, 0, tzinfo=UTC)
    async with engine.begin() as conn:
        learner = await insert_learner(conn)
        cohort_id = await insert_cohort(conn)
        enrollment_id = await insert_enrollment(conn, learner["id"], cohort_id)
        for question_id, response in (("q1", "4"), ("q3", "=HYPERLINK(1) ask users")):
            await conn.execute(
                answers.insert(),
                {
                    "enrollment_id": enrollment_id,
                    "course_id": "digital-skills",
                    "lesson_id": "feedback-survey",
                    "question_id": question_id,
                    "attempt": 1,
                    "response": response,
                    "answered_at": at,
                },
            )
        kinds = {"q1": {"kind": "rating", "value": "4"}, "q3": {"kind": "free_text"}}
        await append_events(
            conn,
            [
                EventRow(
                    type=EventType.ANSWERED,
                    learner_key=learner["learner_key"],
                    cohort_id=cohort_id,
                    course_id="digital-skills",
                    lesson_id="feedback-survey",
                    question_id=question_id,
                    attempt=1,
                    detail=detail,
                    occurred_at=at,
                )
                for question_id, detail in kinds.items()
            ],
        )
    return learner


async def test_each_answer_value_is_exported_and_free_text_only_when_asked(
    engine: AsyncEngine,
) -> None:
    await seed_answers(engine)

    _, text, rows = await export(engine)
    _, asked_text, asked = await export(engine, include_free_text=True)

    # Before: an answered event kept only right or wrong, so a survey could not be read.
    assert [(r["question_id"], r["answer_kind"], r["value"]) for r in rows] == [
        ("q1", "rating", "4"),
        ("q3", "free_text", ""),
    ]
    assert "ask users" not in text and "free_text" not in text.splitlines()[0]
    assert asked_text.splitlines()[0].endswith(",free_text")
    # The reflection, defused like every cell; a rating has no free text.
    assert [r["free_text"] for r in asked] == ["", "'=HYPERLINK(1) ask users"]
