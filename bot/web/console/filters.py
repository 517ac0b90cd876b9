"""The filters form (GET parameters) as `Filters`; a bad value names its field."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date

from bot.analytics.figures import Filters
from bot.trainers.text import N_, Text

FIELDS = ("since", "until", "cohort", "course")


class FilterError(ValueError):
    """A filter value the console cannot use; `field` is the form field, `text` why."""

    def __init__(self, field: str, text: Text) -> None:
        self.field = field
        self.text = text
        super().__init__(f"{field}: {text}")


def _day(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(
            name, N_("expected a date as %(form)s, got %(value)s", form="YYYY-MM-DD", value=value)
        ) from None


def parse_filters(params: Mapping[str, str], courses: Collection[str]) -> Filters:
    """Filters from the query string; FilterError naming the first bad field."""
    since, until = _day(params, "since"), _day(params, "until")
    if since is not None and until is not None and until < since:
        raise FilterError("until", N_("the end date is before the start date"))
    cohort_id = None
    cohort = params.get("cohort", "").strip()
    if cohort:
        if not cohort.isdigit() or len(cohort) > 18:
            raise FilterError("cohort", N_("expected a cohort number, got %(value)s", value=cohort))
        cohort_id = int(cohort)
    course = params.get("course", "").strip() or None
    if course is not None and course not in courses:
        raise FilterError("course", N_("no course has the id %(value)s", value=course))
    return Filters(since=since, until=until, cohort_id=cohort_id, course_id=course)


def filter_query(filters: Filters) -> str:
    """The query string that gives these filters back (for links and the CSV download)."""
    from urllib.parse import urlencode

    pairs = [
        ("since", filters.since.isoformat() if filters.since else ""),
        ("until", filters.until.isoformat() if filters.until else ""),
        ("cohort", str(filters.cohort_id) if filters.cohort_id is not None else ""),
        ("course", filters.course_id or ""),
    ]
    kept = [(name, value) for name, value in pairs if value]
    return "?" + urlencode(kept) if kept else ""
