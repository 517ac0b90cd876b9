"""Cohort schedules: stored JSON, CLI options, and errors that name the field."""

from __future__ import annotations

from datetime import date, time

import pytest

from scheduler.schedule import Schedule, ScheduleError, parse_schedule, schedule_from_options


def test_round_trip_through_json() -> None:
    schedule = parse_schedule(
        {
            "days": ["mon", "wed", "fri"],
            "at": "09:00",
            "quiet": {"start": "20:00", "end": "07:00"},
            "workshop": {
                "date": "2026-05-20",
                "items": {"pre-assessment": "-7d", "survey": "+14d"},
            },
            "reminders": {"after_hours": 24, "max": 2},
        }
    )
    assert schedule.days == (0, 2, 4)
    assert schedule.at == time(9, 0)
    assert schedule.quiet is not None and schedule.quiet.contains(time(23, 0))
    assert schedule.workshop is not None
    assert schedule.workshop.day_of("pre-assessment") == date(2026, 5, 13)
    assert schedule.to_json()["days"] == ["mon", "wed", "fri"]
    assert schedule.to_json()["workshop"]["items"] == {"pre-assessment": "-7d", "survey": "+14d"}
    assert parse_schedule(schedule.to_json()) == schedule


def test_cohort_pacing_column_wins() -> None:
    assert parse_schedule(None, pacing="self_paced").pacing == "self_paced"


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"days": ["mon", "funday"]}, "days", "not a weekday"),
        ({"days": []}, "days", "at least one"),
        ({"at": "25:00"}, "at", "HH:MM"),
        ({"quiet": {"start": "20:00", "end": "20:00"}}, "quiet", "equal"),
        ({"pacing": "weekly"}, "pacing", "scheduled"),
        ({"workshop": {"date": "2026-05-20", "items": {"x": "7 days"}}}, "workshop.items", "-7d"),
        ({"reminders": {"after_hours": 0}}, "reminders.after_hours", "greater"),
        ({"colour": "red"}, "colour", "Extra"),
    ],
)
def test_errors_name_the_field(data: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(data)
    (where, message), *_ = caught.value.issues
    assert where == field
    assert words in message


def test_from_cli_options() -> None:
    schedule = schedule_from_options(
        days="mon,wed,fri",
        at="09:00",
        quiet="20:00-07:00",
        workshop="2026-05-20",
        items=["pre-assessment=-7d"],
        remind_after=12,
        remind_max=3,
    )
    assert schedule.describe() == (
        "mon,wed,fri 09:00, scheduled, quiet 20:00-07:00, "
        "workshop 2026-05-20 pre-assessment:-7d, reminders every 12h up to 3"
    )
    changed = schedule_from_options(base=schedule, quiet="off", pacing="self-paced")
    assert changed.quiet is None and changed.pacing == "self_paced" and changed.days == (0, 2, 4)


@pytest.mark.parametrize(
    ("options", "option", "words"),
    [
        ({"days": "mon,xyz"}, "--days", "not a weekday"),
        ({"at": "9am"}, "--at", "HH:MM"),
        ({"quiet": "20:00"}, "--quiet", "range"),
        ({"items": ["survey=+14d"]}, "--item", "workshop date"),
        ({"workshop": "2026-05-20", "items": ["survey"]}, "--item", "LESSON=OFFSET"),
        ({"workshop": "20/05/2026"}, "--workshop", "date"),
        ({"remind_max": 99}, "--remind-max", "less than"),
    ],
)
def test_cli_errors_name_the_option(options: dict[str, object], option: str, words: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_options(**options)  # type: ignore[arg-type]
    assert caught.value.issues[0][0] == option
    assert words in caught.value.issues[0][1]


def test_workshop_items_must_be_lessons_of_the_cohort() -> None:
    schedule = schedule_from_options(workshop="2026-05-20", items=["nope=-1d"])
    with pytest.raises(ScheduleError, match=r"workshop.items.nope: no course"):
        schedule.check_lessons(["a", "b"])
    Schedule().check_lessons([])
