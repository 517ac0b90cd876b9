"""A cohort's schedule: send days and time, quiet hours, pacing, workshop items, reminders.

Stored as JSON in `cohorts.schedule`; read with `parse_schedule`, written with
`Schedule.to_json()`. Trainers set it from the CLI with `schedule_from_options`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index == date.weekday()
Pacing = Literal["scheduled", "self_paced"]
LessonId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
_OFFSET = re.compile(r"^([+-])(\d{1,3})d$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MAX_REMINDERS = 10


class ScheduleError(ValueError):
    """A schedule is invalid; each issue names its field (or CLI option)."""

    def __init__(self, issues: Sequence[tuple[str, str]]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(f"{field}: {message}" for field, message in self.issues))


def parse_clock(value: str) -> time:
    """`HH:MM` (24 h) as a time; raises ValueError naming the expected form."""
    match = _CLOCK.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a time of day as HH:MM (e.g. 09:00)")
    return time(int(match.group(1)), int(match.group(2)))


def parse_offset(value: str) -> int:
    """A workshop offset like `-7d` or `+14d` as a number of days."""
    match = _OFFSET.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not an offset in days like -7d or +14d")
    days = int(match.group(2))
    return -days if match.group(1) == "-" else days


def _clock(value: Any) -> Any:
    return parse_clock(value) if isinstance(value, str) else value


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuietHours(_Frozen):
    """Local hours in which nothing is sent; `start > end` wraps past midnight."""

    start: time
    end: time

    _parse = field_validator("start", "end", mode="before")(_clock)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: quiet hours would be empty or all day")
        return self

    @field_serializer("start", "end")
    def _hhmm(self, value: time) -> str:
        return value.strftime("%H:%M")

    def contains(self, moment: time) -> bool:
        """Whether a local time of day falls inside the quiet hours."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class Reminders(_Frozen):
    """After `after_hours` without an answer, remind; after `max` reminders, pause."""

    after_hours: int = Field(default=24, ge=1, le=24 * 14)
    max: int = Field(default=2, ge=0, le=MAX_REMINDERS)

    @property
    def interval(self) -> timedelta:
        """The wait before each reminder, and before the pause after the last one."""
        return timedelta(hours=self.after_hours)


class Workshop(_Frozen):
    """A workshop date and lessons placed relative to it (e.g. pre-assessment at -7d)."""

    date: dt.date
    items: dict[LessonId, int] = {}  # lesson id -> days from the workshop date

    @field_validator("items", mode="before")
    @classmethod
    def _offsets(cls, items: Any) -> Any:
        if not isinstance(items, Mapping):
            return items
        return {k: parse_offset(v) if isinstance(v, str) else v for k, v in items.items()}

    @field_validator("items")
    @classmethod
    def _in_range(cls, items: dict[str, int]) -> dict[str, int]:
        for lesson_id, days in items.items():
            if abs(days) > 366:
                raise ValueError(f"{lesson_id}: offset {days:+d}d is more than a year away")
        return items

    @field_serializer("items")
    def _signed(self, items: dict[str, int]) -> dict[str, str]:
        return {lesson_id: f"{days:+d}d" for lesson_id, days in items.items()}

    def day_of(self, lesson_id: str) -> dt.date | None:
        """The local date a placed lesson is due, or None if it is not placed."""
        days = self.items.get(lesson_id)
        return None if days is None else self.date + timedelta(days=days)


class Schedule(_Frozen):
    """When a cohort's lessons go out, in each learner's own time zone."""

    days: tuple[int, ...] = (0, 1, 2, 3, 4)  # weekdays, Monday = 0
    at: time = time(9, 0)
    quiet: QuietHours | None = None
    pacing: Pacing = "scheduled"
    workshop: Workshop | None = None
    reminders: Reminders = Reminders()

    _parse_at = field_validator("at", mode="before")(_clock)

    @field_validator("days", mode="before")
    @classmethod
    def _weekday_names(cls, days: Any) -> Any:
        if isinstance(days, str):
            days = [part for part in days.split(",") if part.strip()]
        if not isinstance(days, list | tuple):
            return days
        out: list[Any] = []
        for day in days:
            if isinstance(day, str):
                name = day.strip().lower()[:3]
                if name not in WEEKDAYS:
                    raise ValueError(f"{day!r} is not a weekday (use {', '.join(WEEKDAYS)})")
                out.append(WEEKDAYS.index(name))
            else:
                out.append(day)
        return out

    @field_validator("days")
    @classmethod
    def _days_valid(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if not days:
            raise ValueError("at least one weekday is needed")
        if any(not 0 <= day <= 6 for day in days):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        if len(set(days)) != len(days):
            raise ValueError("a weekday is listed twice")
        return tuple(sorted(days))

    @field_serializer("days")
    def _day_names(self, days: tuple[int, ...]) -> list[str]:
        return [WEEKDAYS[day] for day in days]

    @field_serializer("at")
    def _at_hhmm(self, value: time) -> str:
        return value.strftime("%H:%M")

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in `cohorts.schedule`."""
        return self.model_dump(mode="json", exclude_none=True)

    def describe(self) -> str:
        """One line for `cohort show`, e.g. `mon,wed,fri 09:00, quiet 20:00-07:00`."""
        parts = [f"{','.join(WEEKDAYS[d] for d in self.days)} {self.at:%H:%M}", self.pacing]
        if self.quiet is not None:
            parts.append(f"quiet {self.quiet}")
        if self.workshop is not None:
            items = " ".join(f"{k}:{v:+d}d" for k, v in self.workshop.items.items())
            parts.append(f"workshop {self.workshop.date.isoformat()} {items}".rstrip())
        reminders = self.reminders
        if reminders.max:
            parts.append(f"reminders every {reminders.after_hours}h up to {reminders.max}")
        else:
            parts.append("no reminders")
        return ", ".join(parts)

    def check_lessons(self, lesson_ids: Iterable[str]) -> None:
        """Raise ScheduleError if a workshop item names a lesson the cohort's courses lack."""
        if self.workshop is None:
            return
        known = set(lesson_ids)
        issues = [
            (f"workshop.items.{lesson_id}", "no course of this cohort has this lesson")
            for lesson_id in self.workshop.items
            if lesson_id not in known
        ]
        if issues:
            raise ScheduleError(issues)


def _issues(error: ValidationError, rename: Mapping[str, str] | None = None) -> ScheduleError:
    issues: list[tuple[str, str]] = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "schedule"
        if rename:
            head = where.split(".", 1)[0]
            where = rename.get(where, rename.get(head, where))
        message = str(item["msg"]).removeprefix("Value error, ")
        issues.append((where, message))
    return ScheduleError(issues)


def parse_schedule(data: Mapping[str, Any] | None, *, pacing: str | None = None) -> Schedule:
    """Read a stored schedule (None: the default); `pacing` (the cohort column) wins if given."""
    try:
        schedule = Schedule.model_validate(dict(data or {}))
        if pacing is not None and pacing != schedule.pacing:
            schedule = Schedule.model_validate({**schedule.model_dump(), "pacing": pacing})
    except ValidationError as exc:
        raise _issues(exc) from None
    return schedule


# CLI option that sets each field, so errors name what the trainer typed.
_OPTIONS = {
    "days": "--days",
    "at": "--at",
    "quiet": "--quiet",
    "pacing": "--pacing",
    "workshop": "--workshop",
    "workshop.date": "--workshop",
    "workshop.items": "--item",
    "reminders.after_hours": "--remind-after",
    "reminders.max": "--remind-max",
    "reminders": "--remind-after",
}


def schedule_from_options(
    *,
    base: Schedule | None = None,
    days: str | None = None,
    at: str | None = None,
    quiet: str | None = None,
    pacing: str | None = None,
    workshop: str | None = None,
    items: Sequence[str] = (),
    remind_after: int | None = None,
    remind_max: int | None = None,
) -> Schedule:
    """Build a schedule from CLI options over `base`, e.g. days="mon,wed,fri", quiet="20:00-07:00".

    `quiet` may be "off"; `workshop` is a date (YYYY-MM-DD) or "off"; each item is
    `LESSON=OFFSET` (e.g. `pre-assessment=-7d`). Errors name the option.
    """
    data: dict[str, Any] = (base or Schedule()).model_dump()
    issues: list[tuple[str, str]] = []
    if days is not None:
        data["days"] = days
    if at is not None:
        data["at"] = at
    if pacing is not None:
        data["pacing"] = pacing.replace("-", "_")
    if quiet is not None:
        if quiet.strip().lower() in ("off", "none", ""):
            data["quiet"] = None
        elif quiet.count("-") != 1:
            issues.append(("--quiet", f"{quiet!r} is not a range like 20:00-07:00 (or off)"))
        else:
            start, end = quiet.split("-")
            data["quiet"] = {"start": start.strip(), "end": end.strip()}
    if workshop is not None:
        if workshop.strip().lower() in ("off", "none", ""):
            data["workshop"] = None
        else:
            current = data.get("workshop") or {}
            data["workshop"] = {"date": workshop.strip(), "items": current.get("items", {})}
    if items:
        if data.get("workshop") is None:
            issues.append(("--item", "workshop items need a workshop date (--workshop)"))
        else:
            placed = dict(data["workshop"].get("items", {}))
            for item in items:
                lesson_id, sep, offset = item.partition("=")
                if not sep:
                    issues.append(("--item", f"{item!r} is not LESSON=OFFSET (e.g. survey=+14d)"))
                    continue
                try:
                    placed[lesson_id.strip()] = parse_offset(offset)
                except ValueError as exc:
                    issues.append(("--item", str(exc)))
            data["workshop"] = {**data["workshop"], "items": placed}
    if remind_after is not None or remind_max is not None:
        reminders = dict(data.get("reminders") or {})
        if remind_after is not None:
            reminders["after_hours"] = remind_after
        if remind_max is not None:
            reminders["max"] = remind_max
        data["reminders"] = reminders
    if issues:
        raise ScheduleError(issues)
    try:
        return Schedule.model_validate(data)
    except ValidationError as exc:
        raise _issues(exc, _OPTIONS) from None
