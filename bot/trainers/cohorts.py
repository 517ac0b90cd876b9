"""Cohorts as trainers see them: create, find (by id or join code), list, schedule, report."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import ChannelName, EventType
from bot.i18n import parse_locale
from bot.lessons.loader import LoadedCourse
from bot.store.cohort_names import MAX_NAME_LENGTH, set_cohort_name, stored_names
from bot.store.db import utcnow
from bot.store.tables import cohorts, enrollments, events, learners, users
from bot.trainers.roles import RoleError, UserRecord, check_cohort_access, require_admin
from bot.trainers.text import N_, TrainerError
from scheduler.schedule import Schedule, ScheduleError, parse_schedule
from scheduler.timezones import TimeZoneError, zone

# No 0/O, 1/I/L: codes are read aloud in workshops and typed on feature phones.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 6
COHORT_STATUSES = ("active", "paused")


class CohortError(TrainerError, ValueError):
    """A cohort cannot be found or created as asked; the message names the option or cohort."""


def valid_time_zone(value: str, option: str = "--time-zone") -> str:
    """The IANA zone name `value`; CohortError naming `option` when it is not one."""
    try:
        zone(value.strip())
    except TimeZoneError:
        raise CohortError(
            N_("%(option)s: %(zone)s is not an IANA time zone name (e.g. %(example)s)"),
            option=option,
            zone=repr(value.strip()),
            example="Africa/Nairobi",
        ) from None
    return value.strip()


def lesson_ids_of(course_ids: Sequence[str], courses: Mapping[str, LoadedCourse]) -> list[str]:
    """Every lesson id of a pathway, in order."""
    return [lesson for course in course_ids for lesson in courses[course].course.lessons]


def _checked(
    schedule: Schedule, course_ids: Sequence[str], courses: Mapping[str, LoadedCourse]
) -> Schedule:
    try:
        schedule.check_lessons(lesson_ids_of(course_ids, courses))
    except ScheduleError as exc:
        # check_lessons names each unknown lesson as "workshop.items.<lesson>".
        lessons = [where.removeprefix("workshop.items.") for where, _ in exc.issues]
        raise CohortError(
            N_("--item %(lesson)s: no course of this cohort has this lesson"),
            lesson=", ".join(lessons),  # every unknown one, as check_lessons listed them
        ) from None
    return schedule


@dataclass(frozen=True, slots=True)
class CohortInfo:
    """A cohort's settings."""

    id: int
    name: str
    join_code: str
    course_ids: list[str]
    time_zone: str
    start_date: date | None
    pacing: str
    schedule: Schedule
    owner_id: int | None
    owner_name: str | None
    status: str
    open_to_sandbox: bool = False  # whether the public /sandbox may join it
    names: Mapping[str, str] = field(default_factory=dict)  # the name learners read per locale

    def deep_link(self, bot_username: str | None) -> str | None:
        """`https://t.me/<bot>?start=<CODE>`, or None without a bot username."""
        return telegram_deep_link(bot_username, self.join_code)


@dataclass(frozen=True, slots=True)
class LearnerProgress:
    """One learner of a cohort for `cohort show --learners`."""

    name: str | None
    channel: str
    status: str
    enrollment_status: str
    lessons_completed: int


@dataclass(frozen=True, slots=True)
class CohortReport:
    """Who is in a cohort and how far they got."""

    learners_by_status: dict[str, int]
    enrollments_by_status: dict[str, int]
    lessons_completed: int  # (learner, lesson) pairs completed
    completed_by_lesson: dict[str, int]
    learners: list[LearnerProgress] = field(default_factory=list)

    @property
    def total_learners(self) -> int:
        """Everyone enrolled, whatever their status."""
        return sum(self.learners_by_status.values())


def generate_join_code(length: int = JOIN_CODE_LENGTH) -> str:
    """A random code from characters that cannot be mistaken for one another."""
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(length))


def telegram_deep_link(bot_username: str | None, join_code: str) -> str | None:
    """The link that opens the bot and sends `/start CODE`."""
    if not bot_username:
        return None
    return f"https://t.me/{bot_username.strip().lstrip('@')}?start={join_code}"


def check_course_ids(course_ids: Sequence[str], known: Collection[str]) -> list[str]:
    """The pathway in order; CohortError naming `--course` for an unknown or repeated id."""
    if not course_ids:
        raise CohortError(N_("--course: give at least one course (repeat --course for a pathway)"))
    unknown = [course for course in course_ids if course not in known]
    if unknown:
        raise CohortError(
            N_("--course: unknown course %(course)s; loaded courses: %(courses)s"),
            course=repr(unknown[0]),
            courses=", ".join(sorted(known)),
        )
    repeated = {course for course in course_ids if list(course_ids).count(course) > 1}
    if repeated:
        raise CohortError(
            N_("--course: %(course)s appears twice in the pathway"),
            course=repr(sorted(repeated)[0]),
        )
    return list(course_ids)


def _stored_schedule(row: Any) -> Schedule:
    try:
        return parse_schedule(row.schedule, pacing=row.pacing)
    except ScheduleError:
        # Written by an older version or by hand: show the default rather than fail to list.
        return parse_schedule(None, pacing=row.pacing)


def _info(row: Any) -> CohortInfo:
    return CohortInfo(
        id=int(row.id),
        name=row.name,
        join_code=row.join_code,
        course_ids=list(row.course_ids),
        time_zone=row.time_zone,
        start_date=row.start_date,
        pacing=row.pacing,
        schedule=_stored_schedule(row),
        owner_id=None if row.owner_id is None else int(row.owner_id),
        owner_name=row.owner_name,
        status=row.status,
        open_to_sandbox=bool(row.open_to_sandbox),
        names=stored_names(row.names),
    )


_SELECT = select(cohorts, users.c.name.label("owner_name")).select_from(
    cohorts.outerjoin(users, users.c.id == cohorts.c.owner_id)
)


async def _unused_code(conn: AsyncConnection) -> str:
    for _ in range(20):
        code = generate_join_code()
        taken = await conn.execute(select(cohorts.c.id).where(cohorts.c.join_code == code))
        if taken.first() is None:
            return code
    # 31^6 codes: twenty collisions in a row means something else is wrong.
    raise CohortError(N_("could not find an unused join code"))


async def create_cohort(
    conn: AsyncConnection,
    *,
    owner: UserRecord,
    name: str,
    course_ids: Sequence[str],
    courses: Mapping[str, LoadedCourse],
    time_zone: str,
    schedule: Schedule,
    start_date: date | None = None,
    open_to_sandbox: bool = False,
    names: Mapping[str, str] | None = None,
) -> CohortInfo:
    """Validate everything, then create an active cohort owned by `owner` with a new join code.

    `open_to_sandbox` lets visitors of the public /sandbox join it (a cohort to try out);
    `names` are its names per locale, already checked with `check_name_in`.
    """
    if not name.strip():
        raise CohortError(N_("NAME: must not be empty"))
    check_name_length(name, "NAME")
    pathway = check_course_ids(course_ids, courses)
    zone_name = valid_time_zone(time_zone)
    _checked(schedule, pathway, courses)
    code = await _unused_code(conn)
    result = await conn.execute(
        cohorts.insert().returning(cohorts.c.id),
        {
            "name": name.strip(),
            "join_code": code,
            "course_ids": pathway,
            "time_zone": zone_name,
            "start_date": start_date,
            "pacing": schedule.pacing,
            "schedule": schedule.to_json(),
            "owner_id": owner.id,
            "status": "active",
            "open_to_sandbox": open_to_sandbox,
            "names": dict(sorted(names.items())) if names else None,
            "created_at": utcnow(),
        },
    )
    cohort = await find_cohort(conn, str(result.scalar_one()))
    assert cohort is not None
    return cohort


def check_name_length(name: str, option: str) -> str:
    """The name, stripped; CohortError naming `option` when it is longer than the column."""
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise CohortError(
            N_("%(option)s: a cohort name has at most %(count)s characters"),
            option=option,
            count=MAX_NAME_LENGTH,
        )
    return name.strip()


def check_locale(value: str, locales: Sequence[str], option: str) -> str:
    """One of the bot's locales, as Babel spells it; CohortError naming `option` otherwise."""
    try:
        locale = parse_locale(value)
    except ValueError:
        locale = None
    if locale not in locales:
        raise CohortError(
            N_("%(option)s: %(locale)s is not one of the bot's languages: %(locales)s"),
            option=option,
            locale=repr(value),
            locales=", ".join(locales),
        )
    assert locale is not None
    return locale


def check_name_in(pairs: Sequence[tuple[str, str]], locales: Sequence[str]) -> dict[str, str]:
    """`--name-in LOCALE NAME` pairs as a dict; CohortError naming the option on a bad one."""
    names: dict[str, str] = {}
    for value, name in pairs:
        locale = check_locale(value, locales, "--name-in")
        if not name.strip():
            raise CohortError(N_("--name-in %(locale)s: the name must not be empty"), locale=locale)
        if locale in names:
            raise CohortError(N_("--name-in %(locale)s: given twice"), locale=locale)
        names[locale] = check_name_length(name, "--name-in")
    return names


async def set_name_in(
    conn: AsyncConnection,
    cohort: CohortInfo,
    *,
    locale: str,
    name: str | None,
    locales: Sequence[str],
) -> tuple[CohortInfo, bool]:
    """Set (None: remove) the name learners read in `locale`: the cohort, and whether it changed."""
    key = check_locale(locale, locales, "LOCALE")
    if name is not None:
        if not name.strip():
            raise CohortError(N_("NAME: must not be empty (use --remove to remove a name)"))
        name = check_name_length(name, "NAME")
    if cohort.names.get(key) == name:
        return cohort, False
    await set_cohort_name(conn, cohort.id, key, name)
    updated = await find_cohort(conn, str(cohort.id))
    assert updated is not None
    return updated, True


async def find_cohort(conn: AsyncConnection, id_or_code: str) -> CohortInfo | None:
    """The cohort with this id (digits) or join code (any case), if any."""
    key = id_or_code.strip()
    if key.isdigit():
        row = (await conn.execute(_SELECT.where(cohorts.c.id == int(key)))).first()
        if row is not None:
            return _info(row)
    row = (await conn.execute(_SELECT.where(cohorts.c.join_code == key.upper()))).first()
    return None if row is None else _info(row)


async def cohort_for(conn: AsyncConnection, user: UserRecord, id_or_code: str) -> CohortInfo:
    """The cohort `user` names, if they may act on it; CohortError or RoleError otherwise."""
    cohort = await find_cohort(conn, id_or_code)
    if cohort is None:
        raise CohortError(
            N_("COHORT: no cohort has the id or join code %(cohort)s"), cohort=repr(id_or_code)
        )
    check_cohort_access(user, cohort_name=cohort.name, owner_id=cohort.owner_id)
    return cohort


async def export_scope(
    conn: AsyncConnection,
    user: UserRecord,
    cohort: str | None,
    *,
    include_addresses: bool,
    include_free_text: bool = False,
) -> list[int] | None:
    """The cohort ids `user` may export (None: every event, admins only); RoleError otherwise.

    A trainer exports their own cohorts (a named one must be theirs); raw addresses and
    free-text answers are for admins alone.
    """
    if include_addresses:
        require_admin(user, N_("export the learners' addresses"))
    if include_free_text:
        require_admin(user, N_("export the learners' free-text answers"))
    if cohort is not None:
        return [(await cohort_for(conn, user, cohort)).id]
    if user.is_admin:
        return None
    return [info.id for info, _ in await list_cohorts(conn, user)]


def not_sandbox_learner() -> ColumnElement[bool]:
    """Learners who did not come through the public sandbox (their channel never changes)."""
    return learners.c.channel != ChannelName.SANDBOX.value


async def cohort_ids_for(conn: AsyncConnection, user: UserRecord) -> frozenset[int] | None:
    """The ids of the cohorts `user` may act on; None for an admin (every cohort)."""
    if user.is_admin:
        return None
    rows = await conn.execute(select(cohorts.c.id).where(cohorts.c.owner_id == user.id))
    return frozenset(int(cohort_id) for (cohort_id,) in rows)


async def cohort_names(conn: AsyncConnection, user: UserRecord) -> list[tuple[int, str]]:
    """(id, name) of the cohorts `user` may act on, by id: a menu, without counting anyone."""
    query = select(cohorts.c.id, cohorts.c.name).order_by(cohorts.c.id)
    if not user.is_admin:
        query = query.where(cohorts.c.owner_id == user.id)
    return [(int(cohort_id), str(name)) for cohort_id, name in await conn.execute(query)]


async def list_cohorts(conn: AsyncConnection, user: UserRecord) -> list[tuple[CohortInfo, int]]:
    """The cohorts `user` may act on (admins: all), each with its enrolled learners.

    The count leaves out the public sandbox's visitors, as the reports do.
    """
    # Every enrollment by cohort (read off ix_enrollments_cohort alone), less the sandbox's few
    # visitors (found through learners' (channel, address) key): no join over every learner.
    everyone = (
        select(enrollments.c.cohort_id, func.count().label("n"))
        .group_by(enrollments.c.cohort_id)
        .subquery()
    )
    sandbox_learners = select(learners.c.id).where(~not_sandbox_learner())
    visitors = (
        select(enrollments.c.cohort_id, func.count().label("n"))
        .where(enrollments.c.learner_id.in_(sandbox_learners.scalar_subquery()))
        .group_by(enrollments.c.cohort_id)
        .subquery()
    )
    enrolled = func.coalesce(everyone.c.n, 0) - func.coalesce(visitors.c.n, 0)
    query = (
        select(cohorts, users.c.name.label("owner_name"), enrolled.label("n"))
        .select_from(
            cohorts.outerjoin(users, users.c.id == cohorts.c.owner_id)
            .outerjoin(everyone, everyone.c.cohort_id == cohorts.c.id)
            .outerjoin(visitors, visitors.c.cohort_id == cohorts.c.id)
        )
        .order_by(cohorts.c.id)
    )
    if not user.is_admin:
        query = query.where(cohorts.c.owner_id == user.id)
    return [(_info(row), int(row.n or 0)) for row in await conn.execute(query)]


async def set_status(conn: AsyncConnection, cohort: CohortInfo, status: str) -> bool:
    """Pause or resume a cohort; False when it already had that status."""
    if status not in COHORT_STATUSES:
        raise CohortError(
            N_("status: expected one of %(statuses)s"), statuses=", ".join(COHORT_STATUSES)
        )
    result = await conn.execute(
        cohorts.update()
        .where(cohorts.c.id == cohort.id, cohorts.c.status != status)
        .values(status=status)
    )
    return bool(result.rowcount)


async def set_open_to_sandbox(conn: AsyncConnection, cohort: CohortInfo, value: bool) -> bool:
    """Open or close a cohort to the public /sandbox; False when it already was so."""
    result = await conn.execute(
        cohorts.update()
        .where(cohorts.c.id == cohort.id, cohorts.c.open_to_sandbox != value)
        .values(open_to_sandbox=value)
    )
    return bool(result.rowcount)


async def update_schedule(
    conn: AsyncConnection,
    cohort: CohortInfo,
    *,
    schedule: Schedule,
    courses: Mapping[str, LoadedCourse],
    start_date: date | None = None,
    time_zone: str | None = None,
) -> CohortInfo:
    """Change a cohort's schedule (and pacing), start date or zone; nothing changes on an error."""
    _checked(schedule, [c for c in cohort.course_ids if c in courses], courses)
    values: dict[str, Any] = {"schedule": schedule.to_json(), "pacing": schedule.pacing}
    if start_date is not None:
        values["start_date"] = start_date
    if time_zone is not None:
        values["time_zone"] = valid_time_zone(time_zone)
    await conn.execute(cohorts.update().where(cohorts.c.id == cohort.id).values(**values))
    updated = await find_cohort(conn, str(cohort.id))
    assert updated is not None
    return updated


async def cohort_report(
    conn: AsyncConnection,
    cohort: CohortInfo,
    *,
    with_learners: bool = False,
    include_sandbox: bool = False,
    courses: Mapping[str, LoadedCourse] | None = None,
) -> CohortReport:
    """Learners by status, enrollments by status and lessons completed, from the tables.

    With `courses`, "lessons completed" counts teaching lessons only, as PROGRESS does: the
    assessments and surveys are still listed by lesson, but counted on their own. The public
    sandbox's visitors are left out unless `include_sandbox`.
    """
    mine = enrollments.c.cohort_id == cohort.id
    if not include_sandbox:
        mine = mine & not_sandbox_learner()
    joined = enrollments.join(learners, learners.c.id == enrollments.c.learner_id)
    by_learner = await conn.execute(
        select(learners.c.status, func.count())
        .select_from(joined)
        .where(mine)
        .group_by(learners.c.status)
    )
    by_enrollment = await conn.execute(
        select(enrollments.c.status, func.count())
        .select_from(joined)
        .where(mine)
        .group_by(enrollments.c.status)
    )
    # A lesson completed twice (e.g. after a re-push) counts once per learner.
    completed_query = select(events.c.learner_key, events.c.course_id, events.c.lesson_id).where(
        events.c.cohort_id == cohort.id,
        events.c.type == EventType.LESSON_COMPLETED.value,
    )
    if not include_sandbox:
        completed_query = completed_query.where(
            or_(events.c.channel.is_(None), events.c.channel != ChannelName.SANDBOX.value)
        )
    teaching_query = completed_query
    measuring = [
        (course_id, lesson_id)
        for course_id, loaded in (courses or {}).items()
        for lesson_id in loaded.measuring_lessons()
    ]
    if measuring:
        teaching_query = completed_query.where(
            tuple_(events.c.course_id, events.c.lesson_id).not_in(measuring)
        )
    completed = completed_query.distinct().subquery()
    counted = teaching_query.distinct().subquery()
    per_lesson = await conn.execute(
        select(completed.c.lesson_id, func.count()).group_by(completed.c.lesson_id)
    )
    completed_by_lesson = {str(lesson): int(n) for lesson, n in per_lesson}
    lessons_completed = int(
        (await conn.execute(select(func.count()).select_from(counted))).scalar_one()
    )
    learners_list: list[LearnerProgress] = []
    if with_learners:
        done = (
            select(counted.c.learner_key, func.count().label("n"))
            .group_by(counted.c.learner_key)
            .subquery()
        )
        rows = await conn.execute(
            select(
                learners.c.name,
                learners.c.channel,
                learners.c.status,
                enrollments.c.status.label("e_status"),
                done.c.n,
            )
            .select_from(joined.outerjoin(done, done.c.learner_key == learners.c.learner_key))
            .where(mine)
            .order_by(learners.c.name, learners.c.id)
        )
        learners_list = [
            LearnerProgress(r.name, r.channel, r.status, r.e_status, int(r.n or 0)) for r in rows
        ]
    return CohortReport(
        learners_by_status={str(s): int(n) for s, n in by_learner},
        enrollments_by_status={str(s): int(n) for s, n in by_enrollment},
        lessons_completed=lessons_completed,
        completed_by_lesson=completed_by_lesson,
        learners=learners_list,
    )


def owner_check(user: UserRecord, owner: UserRecord | None) -> UserRecord:
    """Who owns a new cohort: the acting trainer, or whoever an admin names."""
    if owner is None or owner.id == user.id:
        return user
    if not user.is_admin:
        raise RoleError(
            N_("%(user)s is a trainer: only an admin may %(action)s"),
            user=user.label(),
            action=N_("create for another user"),
        )
    return owner
