"""The schedule a trainer gives on the command line, validated into the cohort's JSON.

Keys of `cohorts.schedule`: weekdays (["mon", ...]), send_time ("HH:MM", local to each
learner), quiet_hours (["HH:MM", "HH:MM"]: nothing from the first to the second),
workshop_date ("YYYY-MM-DD"), reminders ({"after_hours": N, "max": M}).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PACINGS = ("scheduled", "self_paced")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A schedule option is not valid; the message names the option."""


def valid_time_zone(value: str, option: str = "--time-zone") -> str:
    """The IANA zone name `value`; ScheduleError naming `option` when it is not one."""
    name = value.strip()
    # ZoneInfo also accepts file paths such as "../zoneinfo/UTC": only real zone names count.
    if name not in _zone_names():
        raise ScheduleError(f"{option}: unknown time zone {value!r} (use an IANA name)")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"{option}: unknown time zone {value!r}") from exc
    return name


_ZONES: set[str] = set()


def _zone_names() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
        _ZONES.add("UTC")
    return _ZONES


def parse_weekdays(value: str) -> list[str]:
    """'mon,wed,fri' or 'mon-fri' into weekday keys in week order."""
    days: set[str] = set()
    for part in filter(None, (p.strip().lower()[:3] for p in value.split(","))):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last[:3] not in WEEKDAYS):
            raise ScheduleError(f"--days: expected weekdays such as mon,wed,fri, got {value!r}")
        if last:
            start, end = WEEKDAYS.index(first), WEEKDAYS.index(last[:3])
            if end < start:
                raise ScheduleError(f"--days: range {part!r} runs backwards")
            days.update(WEEKDAYS[start : end + 1])
        else:
            days.add(first)
    if not days:
        raise ScheduleError("--days: name at least one weekday")
    return [day for day in WEEKDAYS if day in days]


def parse_clock(value: str, option: str) -> str:
    """'9:00' into '09:00'; ScheduleError naming `option` otherwise."""
    match = _TIME.match(value.strip())
    if match is None:
        raise ScheduleError(f"{option}: expected a time HH:MM, got {value!r}")
    return time(int(match[1]), int(match[2])).strftime("%H:%M")


def parse_quiet_hours(value: str) -> list[str]:
    """'20:00-07:00' into ['20:00', '07:00']."""
    start, sep, end = value.partition("-")
    if not sep:
        raise ScheduleError(f"--quiet-hours: expected HH:MM-HH:MM, got {value!r}")
    pair = [parse_clock(start, "--quiet-hours"), parse_clock(end, "--quiet-hours")]
    if pair[0] == pair[1]:
        raise ScheduleError("--quiet-hours: start and end are the same time")
    return pair


@dataclass(frozen=True, slots=True)
class ScheduleOptions:
    """Schedule options as given; None leaves that part as it was."""

    weekdays: str | None = None
    send_time: str | None = None
    quiet_hours: str | None = None
    workshop_date: date | None = None
    reminder_after_hours: int | None = None
    max_reminders: int | None = None

    def apply(self, current: Mapping[str, Any] | None) -> dict[str, Any]:
        """The cohort's schedule JSON with these options applied; ScheduleError if invalid."""
        schedule = dict(current or {})
        if self.weekdays is not None:
            schedule["weekdays"] = parse_weekdays(self.weekdays)
        if self.send_time is not None:
            schedule["send_time"] = parse_clock(self.send_time, "--send-time")
        if self.quiet_hours is not None:
            if self.quiet_hours.strip().lower() in ("", "none", "off"):
                schedule.pop("quiet_hours", None)
            else:
                schedule["quiet_hours"] = parse_quiet_hours(self.quiet_hours)
        if self.workshop_date is not None:
            schedule["workshop_date"] = self.workshop_date.isoformat()
        if self.reminder_after_hours is not None or self.max_reminders is not None:
            reminders = dict(schedule.get("reminders") or {"after_hours": 24, "max": 2})
            if self.reminder_after_hours is not None:
                if self.reminder_after_hours < 1:
                    raise ScheduleError("--remind-after: expected at least 1 hour")
                reminders["after_hours"] = self.reminder_after_hours
            if self.max_reminders is not None:
                if self.max_reminders < 0:
                    raise ScheduleError("--max-reminders: expected 0 or more")
                reminders["max"] = self.max_reminders
            schedule["reminders"] = reminders
        return schedule


def check_pacing(pacing: str, schedule: Mapping[str, Any]) -> None:
    """ScheduleError unless a scheduled cohort has weekdays and a send time."""
    if pacing not in PACINGS:
        raise ScheduleError(f"--pacing: expected one of {', '.join(PACINGS)}, got {pacing!r}")
    if pacing == "scheduled":
        missing = [
            opt
            for key, opt in (("weekdays", "--days"), ("send_time", "--send-time"))
            if key not in schedule
        ]
        if missing:
            raise ScheduleError(f"--pacing scheduled needs {' and '.join(missing)}")


def describe(pacing: str, schedule: Mapping[str, Any] | None) -> str:
    """One line for `cohort show`: 'scheduled: mon, wed, fri at 09:00; quiet 20:00-07:00'."""
    schedule = schedule or {}
    parts: list[str] = []
    if "weekdays" in schedule:
        parts.append(", ".join(schedule["weekdays"]) + f" at {schedule.get('send_time', '?')}")
    if "quiet_hours" in schedule:
        parts.append("quiet " + "-".join(schedule["quiet_hours"]))
    if "workshop_date" in schedule:
        parts.append(f"workshop {schedule['workshop_date']}")
    if "reminders" in schedule:
        rem = schedule["reminders"]
        parts.append(f"remind after {rem['after_hours']} h, at most {rem['max']}")
    return pacing + (": " + "; ".join(parts) if parts else "")
