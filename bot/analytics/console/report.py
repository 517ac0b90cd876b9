"""The printable report of one cohort: what a programme officer gives a donor."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.delivery import by_channel, sms_cost
from bot.analytics.console.funnel import funnel
from bot.analytics.console.gain import gain
from bot.analytics.console.overview import overview
from bot.analytics.console.survey import survey
from bot.analytics.figures import Figure, FigureContext, Filters, Scope

# Survey figures a donor may read: the ratings, never the free text (it may name people).
_REPORTED_SURVEY = frozenset({"ratings"})


async def cohort_report(
    conn: AsyncConnection,
    cohort_id: int,
    scope: Scope,
    context: FigureContext,
    filters: Filters | None = None,
) -> Sequence[Figure]:
    """The cohort's summary, funnel, learning gain, survey ratings and delivery; () if out of scope.

    `filters` may narrow the dates or the course; the cohort is always `cohort_id`.
    """
    if not scope.allows(cohort_id):
        return ()
    base = filters or Filters()
    filters = Filters(
        since=base.since, until=base.until, cohort_id=cohort_id, course_id=base.course_id
    )
    figures: list[Figure] = [
        *await overview(conn, filters, scope, context),
        *await funnel(conn, filters, scope, context),
        *await gain(conn, filters, scope, context),
    ]
    figures += [f for f in await survey(conn, filters, scope, context) if f.key in _REPORTED_SURVEY]
    figures.append(await by_channel(conn, filters, scope))
    figures.append(await sms_cost(conn, filters, scope, context))
    return tuple(figures)
