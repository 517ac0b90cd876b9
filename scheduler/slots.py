"""Local send times as UTC instants: weekday slots, quiet hours and DST, per time zone.

DST is resolved deterministically with zoneinfo's `fold=0`:
- a local time that does not exist (the clocks jump forward over it) is read with the offset
  in force before the jump, so it lands after the gap by the gap's length
  (02:30 on a New York spring-forward day is sent at 03:30 EDT);
- a local time that happens twice (the clocks fall back) is its first occurrence
  (01:30 on a New York fall-back day is sent at 01:30 EDT, not EST).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduler.schedule import QuietHours, Schedule

# Longest window of missed slots examined after downtime; older slots are summarised.
MAX_LOOKBACK = timedelta(days=400)
_DAY = timedelta(days=1)


def localize(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of local wall time `at` on `day` in `tz` (DST rules above)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def out_of_quiet(instant: datetime, tz: ZoneInfo, quiet: QuietHours | None) -> datetime:
    """`instant`, or the end of the quiet hours it falls in (local to `tz`), as UTC."""
    if quiet is None:
        return instant
    local = instant.astimezone(tz)
    moment = local.time()
    if not quiet.contains(moment):
        return instant
    day = local.date()
    if quiet.start > quiet.end and moment >= quiet.start:
        day += _DAY  # wraps past midnight: the quiet hours end tomorrow morning
    return localize(day, quiet.end, tz)


def slot_on(day: date, schedule: Schedule, tz: ZoneInfo) -> datetime:
    """The send instant for local `day` at the schedule's time, moved out of quiet hours."""
    return out_of_quiet(localize(day, schedule.at, tz), tz, schedule.quiet)


def _days(first: date, last: date, schedule: Schedule, start: date | None) -> Iterator[date]:
    day = first if start is None or first >= start else start
    weekdays = schedule.days
    while day <= last:
        if day.weekday() in weekdays:
            yield day
        day += _DAY


def slots_between(
    low: datetime, high: datetime, schedule: Schedule, tz: ZoneInfo, start: date | None = None
) -> list[datetime]:
    """Regular slots with low <= slot <= high, oldest first (low is clamped to MAX_LOOKBACK)."""
    low = max(low, high - MAX_LOOKBACK)
    # A day before: quiet hours may move yesterday's slot into today.
    first = low.astimezone(tz).date() - _DAY
    last = high.astimezone(tz).date()
    out = [slot_on(day, schedule, tz) for day in _days(first, last, schedule, start)]
    return [slot for slot in out if low <= slot <= high]


def next_slot(
    after: datetime, schedule: Schedule, tz: ZoneInfo, start: date | None = None
) -> datetime:
    """The first regular slot strictly after `after`."""
    first = after.astimezone(tz).date() - _DAY
    if start is not None and start > first:
        first = start
    # Eight days always hold one of the weekdays; one more absorbs a quiet-hours shift.
    for day in _days(first, first + timedelta(days=9), schedule, start):
        slot = slot_on(day, schedule, tz)
        if slot > after:
            return slot
    raise AssertionError("a week always holds a scheduled weekday")  # pragma: no cover


def placed_item_at(day: date, schedule: Schedule, tz: ZoneInfo) -> datetime:
    """When a workshop-placed lesson due on local `day` is sent."""
    return slot_on(day, schedule, tz)
