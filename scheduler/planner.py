"""The planner: a pure function from (now, cohorts, enrollments, lesson order) to a plan.

No I/O: `scheduler.plan_job` reads the inputs, calls `plan`, and writes the result.

The state per enrollment is `next_due_at`: the next instant the planner must look at it (the
next regular slot, or an earlier workshop-placed lesson). At a tick, every event in
[next_due_at, now] is decided: sent now if missed by less than the misfire grace, else
skipped. Every decision carries a reason for the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from bot.domain import DeliveryKind, LearnerStatus
from scheduler.schedule import Schedule
from scheduler.slots import next_slot, out_of_quiet, placed_item_at, slots_between
from scheduler.timezones import zone

ACTIVE = "active"
SELF_PACED = "self_paced"
_REMINDER_ID_MAX = 64  # deliveries.lesson_id
ON_TIME = timedelta(minutes=5)  # later than this after its slot, a send is logged as late


@dataclass(frozen=True, slots=True)
class CohortInput:
    """What the planner needs of a cohort."""

    id: int
    time_zone: str
    schedule: Schedule
    start_date: date | None = None
    status: str = ACTIVE


# Not frozen: 100,000 of these are built per pass and frozen __init__ costs twice as much.
# The planner never changes them.
@dataclass(slots=True)
class EnrollmentInput:
    """One learner's place in a cohort, with the learner fields the planner needs."""

    id: int
    learner_id: int
    cohort_id: int
    course_id: str
    channel: str
    time_zone: str  # the learner's resolved zone (scheduler.timezones.learner_zone)
    learner_status: str = LearnerStatus.ACTIVE.value
    status: str = ACTIVE  # the enrollment's: active, completed, paused
    lesson_id: str | None = None  # the current lesson
    question_index: int | None = None  # the open question of that lesson, if any
    next_due_at: datetime | None = None
    awaiting_since: datetime | None = None  # when the open question was sent
    reminders_sent: int = 0
    # Lessons already in the outbox (kind lesson) -> their due_at. A row due at or after the
    # slot being decided was made for that very slot (by this pass or a concurrent one), so it
    # does not count as "already sent": both passes then pick the same lesson, and the
    # outbox's unique key keeps one.
    planned: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(slots=True)
class Due:
    """An outbox row to insert: a lesson or a reminder for an enrollment."""

    enrollment_id: int
    learner_id: int
    channel: str
    lesson_id: str  # for a reminder: its key (see reminder_key)
    kind: DeliveryKind
    due_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Skip:
    """A slot or item that was not sent, and why."""

    enrollment_id: int
    reason: str
    at: datetime | None = None  # the slot or item time skipped, if any
    lesson_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    """A learner to pause: too many unanswered reminders."""

    enrollment_id: int
    learner_id: int
    lesson_id: str | None
    reason: str


@dataclass(slots=True)
class Plan:
    """Everything one planning pass decided."""

    due: list[Due] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    next_due_at: dict[int, datetime] = field(default_factory=dict)  # only changed values
    reminders_sent: dict[int, int] = field(default_factory=dict)  # enrollment id -> new count


def reminder_key(lesson_id: str, number: int, awaiting_since: datetime) -> str:
    """The outbox `lesson_id` of reminder `number` for the question sent at `awaiting_since`.

    Unique per question asked and reminder, so a question asked again gets fresh reminders.
    """
    return f"r{number}-{int(awaiting_since.timestamp())}-{lesson_id}"[:_REMINDER_ID_MAX]


def parse_reminder_key(key: str) -> tuple[int, str] | None:
    """(reminder number, lesson id, possibly truncated) of a reminder key, or None."""
    head, sep, rest = key.partition("-")
    stamp, sep2, lesson_id = rest.partition("-")
    if not (sep and sep2 and head.startswith("r") and head[1:].isdigit() and stamp.isdigit()):
        return None
    return int(head[1:]), lesson_id


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f}h"


@dataclass(slots=True)
class _Window:
    """Regular slots of one (cohort, zone, next_due_at) at this tick: shared by many learners."""

    fire: datetime | None  # the slot to send now, if one is inside the grace
    missed: list[tuple[datetime, str]]  # slots skipped, with why
    next_regular: datetime
    quiet_now: datetime  # `now`, moved out of quiet hours


class _Planner:
    def __init__(
        self,
        now: datetime,
        cohorts: Mapping[int, CohortInput],
        courses: Mapping[str, Sequence[str]],
        grace: timedelta,
    ) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        self.now = now
        self.cohorts = cohorts
        self.courses = courses
        self.grace = grace
        self.plan = Plan()
        self._windows: dict[tuple[int, str, datetime | None], _Window] = {}
        self._placed: dict[tuple[int, str], dict[str, datetime]] = {}
        self._regular: dict[tuple[int, str], tuple[list[str], dict[str, int]]] = {}

    # --- shared per cohort and zone ---------------------------------------------------------

    def window(self, cohort: CohortInput, tz_name: str, low: datetime | None) -> _Window:
        key = (cohort.id, tz_name, low)
        found = self._windows.get(key)
        if found is not None:
            return found
        tz, schedule, now = zone(tz_name), cohort.schedule, self.now
        fire: datetime | None = None
        missed: list[tuple[datetime, str]] = []
        if low is not None:
            slots = slots_between(low, now, schedule, tz, cohort.start_date)
            if low < now - timedelta(days=400):
                missed.append((low, "downtime longer than 400 days: older slots not listed"))
            for slot in slots:
                late = now - slot
                if late <= self.grace:
                    if fire is not None:
                        missed.append((fire, "superseded by a later slot inside the grace"))
                    fire = slot
                else:
                    missed.append(
                        (
                            slot,
                            f"missed by {_hours(late)}, beyond misfire grace {_hours(self.grace)}",
                        )
                    )
        found = _Window(
            fire=fire,
            missed=missed,
            next_regular=next_slot(now, schedule, tz, cohort.start_date),
            quiet_now=out_of_quiet(now, tz, schedule.quiet),
        )
        self._windows[key] = found
        return found

    def placed(self, cohort: CohortInput, tz_name: str) -> dict[str, datetime]:
        """Workshop-placed lesson -> when it is sent, in this zone."""
        key = (cohort.id, tz_name)
        found = self._placed.get(key)
        if found is None:
            workshop, tz = cohort.schedule.workshop, zone(tz_name)
            found = {}
            if workshop is not None:
                for lesson_id in workshop.items:
                    day = workshop.day_of(lesson_id)
                    assert day is not None
                    found[lesson_id] = placed_item_at(day, cohort.schedule, tz)
            self._placed[key] = found
        return found

    def regular(self, cohort: CohortInput, course_id: str) -> tuple[list[str], dict[str, int]]:
        """The course's lessons sent on weekday slots (not workshop-placed), and their index."""
        key = (cohort.id, course_id)
        found = self._regular.get(key)
        if found is None:
            workshop = cohort.schedule.workshop
            pinned = set(workshop.items) if workshop is not None else set()
            order = [x for x in self.courses.get(course_id, ()) if x not in pinned]
            found = (order, {lesson_id: i for i, lesson_id in enumerate(order)})
            self._regular[key] = found
        return found

    # --- lessons -----------------------------------------------------------------------------

    def lessons(self, e: EnrollmentInput) -> None:
        plan, now = self.plan, self.now
        cohort = self.cohorts.get(e.cohort_id)
        if cohort is None:
            plan.skips.append(Skip(e.id, "cohort unknown"))
            return
        if e.next_due_at is not None and e.next_due_at > now:
            return  # not due: nothing to decide
        why_not = _inactive(cohort, e)
        if why_not is not None:
            plan.skips.append(Skip(e.id, why_not, e.next_due_at))
            return
        window = self.window(cohort, e.time_zone, e.next_due_at)
        placed = self.placed(cohort, e.time_zone)
        course_lessons = self.courses.get(e.course_id, ())
        planned = e.planned
        next_due = window.next_regular
        if e.next_due_at is None:
            # First look at this enrollment: start at the next slot; past items are history.
            for lesson_id, at in placed.items():
                if at > now and lesson_id in course_lessons and lesson_id not in planned:
                    next_due = min(next_due, at)
            plan.next_due_at[e.id] = next_due
            return
        low = e.next_due_at
        for at, reason in window.missed:
            plan.skips.append(Skip(e.id, reason, at))
        for lesson_id, at in placed.items():
            if lesson_id not in course_lessons or lesson_id in planned:
                continue
            if at > now:
                next_due = min(next_due, at)
            elif at >= low:
                late = now - at
                if late <= self.grace:
                    due_at, reason = self.send_time(at, window, "workshop item")
                    kind = DeliveryKind.LESSON
                    plan.due.append(
                        Due(e.id, e.learner_id, e.channel, lesson_id, kind, due_at, reason)
                    )
                else:
                    reason = f"workshop item missed by {_hours(late)}, beyond misfire grace"
                    plan.skips.append(Skip(e.id, reason, at, lesson_id))
        if window.fire is not None:
            self.regular_slot(e, cohort, window)
        if next_due != e.next_due_at:
            plan.next_due_at[e.id] = next_due

    def regular_slot(self, e: EnrollmentInput, cohort: CohortInput, window: _Window) -> None:
        plan = self.plan
        fire = window.fire
        assert fire is not None
        order, _ = self.regular(cohort, e.course_id)
        planned = [x for x, at in e.planned.items() if at < fire] if e.planned else ()
        if cohort.schedule.pacing == SELF_PACED:
            if e.lesson_id is None and order and not any(x in planned for x in order):
                lesson_id = order[0]
                reason = "self-paced: first lesson"
            else:
                plan.skips.append(Skip(e.id, "self-paced: NEXT brings the next lesson", fire))
                return
        else:
            if e.lesson_id is not None and e.question_index is not None:
                reason = f"awaiting an answer to {e.lesson_id}"
                plan.skips.append(Skip(e.id, reason, fire, e.lesson_id))
                return
            # The first lesson in course order not yet sent: progress is the lessons done, not
            # a position, so a lesson pushed out of order leaves the ones before it to come.
            # (Every completed lesson was sent, so the outbox holds it: it is never resent.)
            found = next((x for x in order if x not in planned), None)
            if found is None:
                plan.skips.append(Skip(e.id, f"no lesson left to schedule in {e.course_id}", fire))
                return
            lesson_id, reason = found, "scheduled slot"
        due_at, reason = self.send_time(fire, window, reason)
        plan.due.append(
            Due(e.id, e.learner_id, e.channel, lesson_id, DeliveryKind.LESSON, due_at, reason)
        )

    def send_time(self, at: datetime, window: _Window, reason: str) -> tuple[datetime, str]:
        """When a slot noticed now is sent, and the reason, saying if it was missed."""
        late = self.now - at
        if late > ON_TIME:
            reason += f" (late by {_hours(late)}, inside misfire grace {_hours(self.grace)})"
        # A late slot sent now must still respect quiet hours.
        return (at if window.quiet_now == self.now else window.quiet_now), reason

    # --- reminders ---------------------------------------------------------------------------

    def reminders(self, e: EnrollmentInput) -> None:
        plan, now = self.plan, self.now
        if e.awaiting_since is None or e.question_index is None or e.lesson_id is None:
            return
        cohort = self.cohorts.get(e.cohort_id)
        if cohort is None or _inactive(cohort, e) is not None:
            return
        settings = cohort.schedule.reminders
        if settings.max == 0:
            return
        sent = e.reminders_sent
        if now < e.awaiting_since + settings.interval * (sent + 1):
            return
        if sent >= settings.max:
            reason = f"no answer after {sent} reminders: paused until the learner replies"
            plan.pauses.append(Pause(e.id, e.learner_id, e.lesson_id, reason))
            return
        number = sent + 1
        due_at = out_of_quiet(now, zone(e.time_zone), cohort.schedule.quiet)
        reason = (
            f"reminder {number} of {settings.max}: no answer for {_hours(now - e.awaiting_since)}"
        )
        key = reminder_key(e.lesson_id, number, e.awaiting_since)
        plan.due.append(
            Due(e.id, e.learner_id, e.channel, key, DeliveryKind.REMINDER, due_at, reason)
        )
        plan.reminders_sent[e.id] = number


def _inactive(cohort: CohortInput, e: EnrollmentInput) -> str | None:
    if cohort.status != ACTIVE:
        return f"cohort {cohort.status}"
    if e.learner_status != LearnerStatus.ACTIVE:
        return f"learner {e.learner_status}"
    if e.status != ACTIVE:
        return f"enrollment {e.status}"
    return None


def plan(
    now: datetime,
    cohorts: Iterable[CohortInput],
    enrollments: Iterable[EnrollmentInput],
    courses: Mapping[str, Sequence[str]],
    *,
    misfire_grace: timedelta,
    lessons: bool = True,
    reminders: bool = True,
) -> Plan:
    """Decide what is due at `now`: lessons on slots, workshop items, reminders and pauses.

    `courses` maps a course id to its lesson ids in order. Pass `lessons=False` or
    `reminders=False` to plan only one kind (the plan and reminder jobs each do one).
    """
    planner = _Planner(now, {c.id: c for c in cohorts}, courses, misfire_grace)
    for enrollment in enrollments:
        if lessons:
            planner.lessons(enrollment)
        if reminders:
            planner.reminders(enrollment)
    return planner.plan
