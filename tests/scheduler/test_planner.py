"""The pure planner with a fixed clock: zones, DST, quiet hours, workshop items, pacing,
learner statuses, reminders and pauses, misfire."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from bot.domain import DeliveryKind
from scheduler.planner import CohortInput, EnrollmentInput, Plan, parse_reminder_key, plan
from scheduler.schedule import parse_schedule
from scheduler.slots import localize, next_slot
from scheduler.timezones import zone

LESSONS = {"course": [f"l{i}" for i in range(10)]}
GRACE = timedelta(hours=6)


def done(*lesson_ids: str) -> dict[str, datetime]:
    """Lessons planned long ago."""
    return dict.fromkeys(lesson_ids, utc(2026, 1, 1))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def cohort(tz: str = "Africa/Nairobi", **schedule: Any) -> CohortInput:
    return CohortInput(1, tz, parse_schedule(schedule), start_date=date(2026, 1, 1))


def learner(id: int = 1, tz: str = "Africa/Nairobi", **fields: Any) -> EnrollmentInput:
    return EnrollmentInput(
        id=id, learner_id=id, cohort_id=1, course_id="course", channel="sms", time_zone=tz, **fields
    )


def run(now: datetime, c: CohortInput, *enrollments: EnrollmentInput) -> Plan:
    return plan(now, [c], enrollments, LESSONS, misfire_grace=GRACE)


def test_nairobi_and_dakar_each_get_nine_local() -> None:
    c = cohort(days="mon,wed,fri", at="09:00")
    monday = utc(2026, 3, 2, 0, 0)
    first = run(monday, c, learner(1, "Africa/Nairobi"), learner(2, "Africa/Dakar"))
    assert first.due == []
    assert first.next_due_at == {1: utc(2026, 3, 2, 6, 0), 2: utc(2026, 3, 2, 9, 0)}

    nairobi = learner(1, "Africa/Nairobi", next_due_at=utc(2026, 3, 2, 6, 0))
    dakar = learner(2, "Africa/Dakar", next_due_at=utc(2026, 3, 2, 9, 0))
    at_six = run(utc(2026, 3, 2, 6, 0, 20), c, nairobi, dakar)
    assert [(d.enrollment_id, d.lesson_id, d.due_at) for d in at_six.due] == [
        (1, "l0", utc(2026, 3, 2, 6, 0))
    ]
    assert at_six.due[0].kind == DeliveryKind.LESSON and at_six.due[0].reason == "scheduled slot"
    assert at_six.next_due_at == {1: utc(2026, 3, 4, 6, 0)}  # Wednesday, 09:00 Nairobi
    at_nine = run(utc(2026, 3, 2, 9, 0), c, dakar)
    assert [(d.enrollment_id, d.lesson_id) for d in at_nine.due] == [(2, "l0")]


@pytest.mark.parametrize(
    ("tz", "day", "at", "expected"),
    [
        # Spring forward: 02:30 does not exist; read with the old offset, i.e. 03:30 EDT.
        ("America/New_York", date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7, 30)),
        ("America/New_York", date(2026, 3, 9), time(2, 30), utc(2026, 3, 9, 6, 30)),
        # Fall back: 01:30 happens twice; the first (EDT) is used.
        ("America/New_York", date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),
        ("Europe/Paris", date(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 1, 30)),
        ("Europe/Paris", date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30)),
        # São Paulo's clocks jumped at midnight (2018): 00:30 was read as 01:30 -02.
        ("America/Sao_Paulo", date(2018, 11, 4), time(0, 30), utc(2018, 11, 4, 3, 30)),
    ],
)
def test_dst_gaps_and_repeats_resolve_deterministically(
    tz: str, day: date, at: time, expected: datetime
) -> None:
    assert localize(day, at, zone(tz)) == expected


def test_daily_nine_in_paris_across_both_transitions() -> None:
    schedule, paris = parse_schedule({"days": "mon,tue,wed,thu,fri,sat,sun"}), zone("Europe/Paris")
    assert next_slot(utc(2026, 3, 28, 12), schedule, paris) == utc(2026, 3, 29, 7, 0)  # CEST
    assert next_slot(utc(2026, 3, 27, 12), schedule, paris) == utc(2026, 3, 28, 8, 0)  # CET
    assert next_slot(utc(2026, 10, 24, 12), schedule, paris) == utc(2026, 10, 25, 8, 0)  # CET
    c = CohortInput(1, "Europe/Paris", schedule)
    sent = run(
        utc(2026, 3, 29, 7, 0), c, learner(tz="Europe/Paris", next_due_at=utc(2026, 3, 29, 7))
    )
    assert sent.due[0].due_at == utc(2026, 3, 29, 7, 0)
    assert sent.next_due_at[1] == utc(2026, 3, 30, 7, 0)


def test_quiet_hours_wrapping_midnight_move_the_slot_to_their_end() -> None:
    c = cohort(days="mon", at="21:00", quiet={"start": "20:00", "end": "07:00"})
    first = run(utc(2026, 3, 2, 0, 0), c, learner())  # Monday
    assert first.next_due_at[1] == utc(2026, 3, 3, 4, 0)  # Tuesday 07:00 Nairobi


def test_quiet_hours_within_a_day() -> None:
    c = cohort(days="mon", at="13:00", quiet={"start": "12:00", "end": "14:30"})
    assert run(utc(2026, 3, 2, 0, 0), c, learner()).next_due_at[1] == utc(2026, 3, 2, 11, 30)


def test_workshop_items_are_placed_relative_to_the_workshop() -> None:
    c = cohort(
        days="mon",
        at="09:00",
        workshop={"date": "2026-03-20", "items": {"l0": "-7d", "l9": "+14d"}},
    )
    first = run(utc(2026, 3, 10, 12, 0), c, learner())  # Tuesday
    assert first.next_due_at[1] == utc(2026, 3, 13, 6, 0)  # the pre-assessment, Friday 13th

    pre = run(utc(2026, 3, 13, 6, 0), c, learner(next_due_at=utc(2026, 3, 13, 6, 0)))
    assert [(d.lesson_id, d.reason) for d in pre.due] == [("l0", "workshop item")]
    assert pre.next_due_at[1] == utc(2026, 3, 16, 6, 0)  # back to Mondays

    # On Monday the regular lessons skip the placed ones: l1 comes after the pre-assessment.
    monday = learner(next_due_at=utc(2026, 3, 16, 6, 0), lesson_id="l0", planned=done("l0"))
    assert [d.lesson_id for d in run(utc(2026, 3, 16, 6, 0), c, monday).due] == ["l1"]

    survey_at = utc(2026, 4, 3, 6, 0)  # workshop + 14 days, a Friday
    late = learner(next_due_at=utc(2026, 3, 30, 6, 0), lesson_id="l3", planned=done("l0"))
    assert run(utc(2026, 3, 30, 6, 0), c, late).next_due_at[1] == survey_at
    survey = run(survey_at, c, learner(next_due_at=survey_at, lesson_id="l4"))
    assert [d.lesson_id for d in survey.due] == ["l9"]


def test_self_paced_sends_only_the_first_lesson() -> None:
    c = cohort(days="mon,tue,wed,thu,fri", at="09:00", pacing="self_paced")
    due = utc(2026, 3, 2, 6, 0)
    first = run(due, c, learner(next_due_at=due))
    assert [(d.lesson_id, d.reason) for d in first.due] == [("l0", "self-paced: first lesson")]
    later = run(due, c, learner(next_due_at=due, lesson_id="l0", planned=done("l0")))
    assert later.due == []
    assert [s.reason for s in later.skips] == ["self-paced: NEXT brings the next lesson"]


@pytest.mark.parametrize("status", ["stopped", "paused", "deleted", "unreachable"])
def test_inactive_learners_get_nothing(status: str) -> None:
    c = cohort(days="mon", at="09:00")
    due = utc(2026, 3, 2, 6, 0)
    result = run(due, c, learner(next_due_at=due, learner_status=status))
    assert result.due == [] and result.next_due_at == {}
    assert [s.reason for s in result.skips] == [f"learner {status}"]


def test_an_open_question_holds_the_next_lesson() -> None:
    c = cohort(days="mon,wed", at="09:00")
    due = utc(2026, 3, 2, 6, 0)
    waiting = learner(next_due_at=due, lesson_id="l2", question_index=0, planned=done("l2"))
    result = run(due, c, waiting)
    assert result.due == [] and result.skips[0].reason == "awaiting an answer to l2"
    assert result.next_due_at[1] == utc(2026, 3, 4, 6, 0)


def test_after_the_last_lesson_nothing_is_left() -> None:
    c = cohort(days="mon", at="09:00")
    due = utc(2026, 3, 2, 6, 0)
    result = run(due, c, learner(next_due_at=due, lesson_id="l9", planned=done(*LESSONS["course"])))
    assert result.due == [] and result.skips[0].reason == "no lesson left to schedule in course"


def test_a_lesson_pushed_out_of_order_leaves_the_ones_before_it_to_come() -> None:
    # Before (issue 9): after a push of l7, the next slot sent l8, and l1-l6 never came.
    c = cohort(days="mon", at="09:00")
    due = utc(2026, 3, 2, 6, 0)
    pushed = learner(next_due_at=due, lesson_id="l7", planned=done("l0", "l7"))
    result = run(due, c, pushed)
    assert [d.lesson_id for d in result.due] == ["l1"]


def test_misfire_inside_the_grace_is_sent_now() -> None:
    c = cohort(days="mon,wed", at="09:00")
    slot = utc(2026, 3, 2, 6, 0)
    result = run(slot + timedelta(hours=5), c, learner(next_due_at=slot))
    assert [d.lesson_id for d in result.due] == ["l0"]
    assert result.due[0].reason == "scheduled slot (late by 5.0h, inside misfire grace 6.0h)"


def test_misfire_beyond_the_grace_skips_to_the_next_slot() -> None:
    c = cohort(days="mon,wed", at="09:00")
    slot = utc(2026, 3, 2, 6, 0)
    result = run(slot + timedelta(hours=7), c, learner(next_due_at=slot))
    assert result.due == []
    assert [(s.at, s.reason) for s in result.skips] == [
        (slot, "missed by 7.0h, beyond misfire grace 6.0h")
    ]
    assert result.next_due_at[1] == utc(2026, 3, 4, 6, 0)


def test_after_long_downtime_only_the_latest_slot_inside_the_grace_is_sent() -> None:
    c = cohort(days="mon,tue,wed,thu,fri,sat,sun", at="09:00")
    now = utc(2026, 3, 5, 8, 0)  # 2 h after Thursday's slot; Mon-Wed were missed
    result = run(now, c, learner(next_due_at=utc(2026, 3, 2, 6, 0)))
    assert [d.due_at for d in result.due] == [utc(2026, 3, 5, 6, 0)]
    assert len(result.skips) == 3 and all("beyond misfire grace" in s.reason for s in result.skips)


def test_a_late_send_still_respects_quiet_hours() -> None:
    c = cohort(days="mon", at="19:00", quiet={"start": "20:00", "end": "07:00"})
    slot = utc(2026, 3, 2, 16, 0)  # 19:00 Nairobi
    result = run(slot + timedelta(hours=2), c, learner(next_due_at=slot))  # 21:00 Nairobi
    assert result.due[0].due_at == utc(2026, 3, 3, 4, 0)  # Tuesday 07:00 Nairobi


def test_reminders_then_pause() -> None:
    c = cohort(days="mon", at="09:00", reminders={"after_hours": 24, "max": 2})
    asked = utc(2026, 3, 2, 6, 0)
    open_question: dict[str, Any] = {
        "lesson_id": "l0",
        "question_index": 0,
        "awaiting_since": asked,
    }
    now = asked + timedelta(hours=25)
    first = run(now, c, learner(next_due_at=utc(2026, 3, 9, 6), **open_question))
    assert [(d.kind, d.due_at) for d in first.due] == [(DeliveryKind.REMINDER, now)]
    assert parse_reminder_key(first.due[0].lesson_id) == (1, "l0")
    assert first.reminders_sent == {1: 1}

    too_soon = run(asked + timedelta(hours=47), c, learner(reminders_sent=1, **open_question))
    assert too_soon.due == [] and too_soon.pauses == []
    second = run(asked + timedelta(hours=48), c, learner(reminders_sent=1, **open_question))
    assert second.reminders_sent == {1: 2}
    assert second.due[0].lesson_id != first.due[0].lesson_id

    waiting = run(asked + timedelta(hours=71), c, learner(reminders_sent=2, **open_question))
    assert waiting.pauses == []
    paused = run(asked + timedelta(hours=72), c, learner(reminders_sent=2, **open_question))
    assert paused.due == []
    assert [(p.learner_id, p.reason) for p in paused.pauses] == [
        (1, "no answer after 2 reminders: paused until the learner replies")
    ]


def test_reminders_wait_for_quiet_hours_and_can_be_off() -> None:
    c = cohort(days="mon", quiet={"start": "20:00", "end": "07:00"})
    asked = utc(2026, 3, 2, 18, 0)  # 21:00 Nairobi
    question: dict[str, Any] = {"lesson_id": "l0", "question_index": 0, "awaiting_since": asked}
    result = run(asked + timedelta(hours=24), c, learner(**question))
    assert result.due[0].due_at == utc(2026, 3, 4, 4, 0)  # Wednesday 07:00 Nairobi
    off = cohort(days="mon", reminders={"max": 0})
    later = learner(next_due_at=utc(2027, 1, 1), **question)
    assert run(asked + timedelta(days=30), off, later) == Plan()


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan(datetime(2026, 3, 2), [], [], LESSONS, misfire_grace=GRACE)
