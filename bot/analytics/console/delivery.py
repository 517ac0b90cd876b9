"""Delivery: the outbox by channel and outcome, its errors, SMS segments and cost, templates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import phonenumbers
from sqlalchemy import ColumnElement, Select, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.analytics.console.common import SANDBOX, cohort_clause, in_range, side_by_side
from bot.analytics.figures import (
    N_,
    Cell,
    Chart,
    Column,
    Figure,
    FigureContext,
    Filters,
    Scope,
    figure,
)
from bot.domain import ChannelName, DeliveryKind, DeliveryStatus
from bot.store.tables import OUTBOX_IN_FLIGHT, deliveries, enrollments, learners

# How the outbox statuses add up: a delivered message was also sent.
SENT = frozenset(
    {DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ}
)
DELIVERED = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.READ})
FAILED = frozenset({DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.DEAD})
WAITING = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.HELD})
# ix_deliveries_console's predicate on PostgreSQL, literally (see tables.OUTBOX_SETTLED).
_IN_FLIGHT: list[ColumnElement[str]] = [
    literal_column(f"'{status}'") for status in OUTBOX_IN_FLIGHT
]
SETTLED_ROWS = deliveries.c.status.not_in(_IN_FLIGHT)
IN_FLIGHT_ROWS = deliveries.c.status.in_(_IN_FLIGHT)
UNKNOWN_COUNTRY = "??"
# "+" and up to 3 digits hold every calling code: enough to tell a number's country.
_PREFIX_LENGTH = 4


def _scoped(query: Select[Any], filters: Filters, scope: Scope) -> Select[Any]:
    """Deliveries in the reader's scope and the filters, never the sandbox's."""
    clauses: list[ColumnElement[bool]] = [
        deliveries.c.channel != SANDBOX,
        *in_range(deliveries.c.created_at, filters),
    ]
    # Replies belong to no enrollment: only a reader of every cohort (an admin, no cohort
    # or course chosen) sees them. Others see the deliveries of the enrollments in scope,
    # found from the cohorts' enrollments (ix_enrollments_cohort), not by joining every row.
    if scope.cohort_ids is not None or filters.cohort_id is not None or filters.course_id:
        enrolled = select(enrollments.c.id).where(
            cohort_clause(enrollments.c.cohort_id, filters, scope)
        )
        if filters.course_id is not None:
            enrolled = enrolled.where(enrollments.c.course_id == filters.course_id)
        clauses.append(deliveries.c.enrollment_id.in_(enrolled.scalar_subquery()))
    return query.where(*clauses)


def _settled(conn: AsyncConnection) -> list[ColumnElement[bool]]:
    """The term that lets a figure of settled rows read the console's index, if it needs one.

    PostgreSQL's index leaves out the rows still with the dispatcher (migration 0015), so
    each such query repeats its predicate. SQLite's index is whole, and there the term would
    turn the planner to the narrower claim index, sorted (docs/BENCHMARKS.md).
    """
    return [SETTLED_ROWS] if conn.dialect.name == "postgresql" else []


def _statuses(values: frozenset[DeliveryStatus]) -> list[str]:
    return sorted(str(value) for value in values)


def _count(found: dict[str, int], values: frozenset[DeliveryStatus]) -> int:
    """How many of `found` (status -> count) have one of these statuses."""
    return sum(found.get(str(value), 0) for value in values)


async def by_channel(conn: AsyncConnection, filters: Filters, scope: Scope) -> Figure:
    """Per channel: planned, sent, delivered, failed, waiting, cancelled."""
    counted = select(deliveries.c.channel, deliveries.c.status, func.count()).group_by(
        deliveries.c.channel, deliveries.c.status
    )
    # On PostgreSQL, settled rows from the console's index, those queued from the claim index.
    parts = [[SETTLED_ROWS], [IN_FLIGHT_ROWS]] if _settled(conn) else [[]]
    totals: dict[str, dict[str, int]] = {}
    for part in parts:
        query = _scoped(counted.where(*part), filters, scope)
        for channel, status, count in await conn.execute(query):
            totals.setdefault(str(channel), {})[str(status)] = int(count)
    rows: list[list[Cell]] = []
    for channel in sorted(totals):
        found = totals[channel]
        rows.append(
            [
                channel,
                sum(found.values()),
                _count(found, SENT),
                _count(found, DELIVERED),
                _count(found, FAILED),
                _count(found, WAITING),
                found.get(str(DeliveryStatus.CANCELLED), 0),
            ]
        )
    return figure(
        "delivery",
        N_("Deliveries by channel"),
        CHANNEL_COLUMNS,
        rows,
        chart=Chart("stacked_bar", "channel", ("delivered", "failed", "waiting")),
        note=N_(
            "Sent counts every message a provider accepted; delivered, those it confirmed "
            "(Telegram confirms none)."
        ),
    )


async def errors(conn: AsyncConnection, filters: Filters, scope: Scope) -> Figure:
    """Failed deliveries per channel and error class (the provider's code, or our kind)."""
    code = func.coalesce(deliveries.c.error_code, "")
    query = _scoped(
        select(deliveries.c.channel, code.label("code"), func.count().label("n"))
        .where(*_settled(conn), deliveries.c.status.in_(_statuses(FAILED)))
        .group_by(deliveries.c.channel, code),
        filters,
        scope,
    )
    found = sorted(
        ((str(r.channel), str(r.code), int(r.n)) for r in await conn.execute(query)),
        key=lambda row: (-row[2], row[0], row[1]),
    )
    rows: list[list[Cell]] = [list(row) for row in found]
    return figure(
        "errors",
        N_("Failed deliveries by error"),
        ERROR_COLUMNS,
        rows,
        chart=Chart("bar", "error", ("failed",)),
        note=N_("The provider's error code, or the kind of error when it gave none."),
    )


def country_of_prefix(prefix: str | None) -> str:
    """The country (ISO alpha-2) of an E.164 number's first digits, or UNKNOWN_COUNTRY."""
    digits = (prefix or "").lstrip("+")
    for length in (1, 2, 3):
        code = digits[:length]
        if len(code) == length and code.isdigit():
            region = phonenumbers.region_code_for_country_code(int(code))
            if region != phonenumbers.UNKNOWN_REGION:
                return str(region)
    return UNKNOWN_COUNTRY


async def sms_cost(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> Figure:
    """SMS sent per country (from the number's calling code): messages, segments, cost."""
    # Summed per learner from ix_deliveries_console alone: grouped by the bare column, SQLite
    # walked ix_deliveries_learner and read every row instead (about 1 s at 400,000 rows).
    sender = (deliveries.c.learner_id + 0).label("learner_id")
    per_learner = _scoped(
        select(
            sender,
            func.count().label("messages"),
            func.sum(func.coalesce(deliveries.c.segments, 0)).label("segments"),
        )
        .where(
            *_settled(conn),
            deliveries.c.channel == str(ChannelName.SMS),
            deliveries.c.status.in_(_statuses(SENT)),
        )
        .group_by(sender),
        filters,
        scope,
    ).subquery()
    prefix = func.substr(learners.c.address, 1, _PREFIX_LENGTH)
    query = (
        select(
            prefix.label("prefix"),
            func.sum(per_learner.c.messages).label("messages"),
            func.sum(per_learner.c.segments).label("segments"),
        )
        .select_from(per_learner.join(learners, learners.c.id == per_learner.c.learner_id))
        .group_by(prefix)
    )
    per_country: dict[str, list[int]] = {}
    for row in await conn.execute(query):
        totals = per_country.setdefault(country_of_prefix(row.prefix), [0, 0])
        totals[0] += int(row.messages)
        totals[1] += int(row.segments or 0)
    rows: list[list[Cell]] = []
    for country in sorted(per_country):
        messages, segments = per_country[country]
        price = context.segment_prices.get(country)
        rows.append(
            [country, messages, segments, price, None if price is None else segments * price]
        )
    return figure(
        "sms_cost",
        N_("SMS segments and estimated cost"),
        COST_COLUMNS,
        rows,
        chart=Chart("bar", "country", ("segments",)),
        note=N_(
            "Country from the number's calling code (?? once a learner's data is deleted); "
            "price per segment from LEARNBOT_SMS_PRICES, no cost where none is set."
        ),
    )


async def templates(conn: AsyncConnection, filters: Filters, scope: Scope) -> Figure:
    """WhatsApp templates sent outside the 24-hour window, per locale, and how they fared."""
    locale = func.coalesce(deliveries.c.locale, "")
    query = _scoped(
        select(locale.label("locale"), deliveries.c.status, func.count().label("n"))
        .where(
            *_settled(conn),  # a template still queued is neither sent nor failed yet
            deliveries.c.channel == str(ChannelName.WHATSAPP),
            deliveries.c.kind == str(DeliveryKind.TEMPLATE),
        )
        .group_by(locale, deliveries.c.status),
        filters,
        scope,
    )
    totals: dict[str, dict[str, int]] = {}
    for row in await conn.execute(query):
        totals.setdefault(str(row.locale), {})[str(row.status)] = int(row.n)
    rows: list[list[Cell]] = []
    for key in sorted(totals):
        found = totals[key]
        rows.append([key, _count(found, SENT), _count(found, DELIVERED), _count(found, FAILED)])
    return figure(
        "templates",
        N_("WhatsApp templates used"),
        TEMPLATE_COLUMNS,
        rows,
        chart=Chart("bar", "locale", ("sent",)),
        note=N_('"Your lesson is ready" templates sent outside WhatsApp\'s 24-hour window.'),
    )


async def delivery(
    conn: AsyncConnection, filters: Filters, scope: Scope, context: FigureContext
) -> Sequence[Figure]:
    """The delivery page: by channel, errors, SMS cost, WhatsApp templates.

    The outbox is updated in place, so no rollup covers it and each figure scans it: they
    run side by side.
    """
    return tuple(
        await side_by_side(
            conn,
            lambda own: by_channel(own, filters, scope),
            lambda own: errors(own, filters, scope),
            lambda own: sms_cost(own, filters, scope, context),
            lambda own: templates(own, filters, scope),
        )
    )


CHANNEL_COLUMNS = (
    Column("channel", N_("Channel")),
    Column("planned", N_("Planned"), "count"),
    Column("sent", N_("Sent"), "count"),
    Column("delivered", N_("Delivered"), "count"),
    Column("failed", N_("Failed"), "count"),
    Column("waiting", N_("Waiting"), "count"),
    Column("cancelled", N_("Cancelled"), "count"),
)
ERROR_COLUMNS = (
    Column("channel", N_("Channel")),
    Column("error", N_("Error")),
    Column("failed", N_("Failed"), "count"),
)
COST_COLUMNS = (
    Column("country", N_("Country")),
    Column("messages", N_("Messages"), "count"),
    Column("segments", N_("Segments"), "count"),
    Column("price", N_("Price per segment"), "number"),
    Column("cost", N_("Estimated cost"), "number"),
)
TEMPLATE_COLUMNS = (
    Column("locale", N_("Locale")),
    Column("sent", N_("Sent"), "count"),
    Column("delivered", N_("Delivered"), "count"),
    Column("failed", N_("Failed"), "count"),
)
