"""A learner's timeline ("did she get lesson 3?") and a cohort's printable report."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bot.analytics.console.report import cohort_report
from bot.analytics.console.timeline import learner_timeline
from bot.analytics.figures import FigureContext, Filters
from bot.store.db import utcnow
from bot.web.console.actions import readers_cohort
from bot.web.console.app import Console
from bot.web.console.filters import FilterError, parse_filters
from bot.web.console.render import figure_view


def _context(console: Console) -> FigureContext:
    config = console.config
    return FigureContext(
        courses=config.courses,
        secret_key=config.settings.secret_key,
        segment_prices=config.segment_prices,
        now=utcnow(),
    )


async def learner_page(console: Console, request: Request) -> Response:
    """GET /console/learners?pseudonym=…: the learner's events and deliveries, in time order.

    Found by the pseudonym exports and figures show; an admin may add `reveal=1` to see the
    address. A learner outside the reader's cohorts is "not found", like any other.
    """
    reader = await console.reader(request)
    if reader.user is None:
        return console.to_sign_in(request)
    wanted = request.query_params.get("pseudonym", "").strip()[:64]
    reveal = reader.scope.is_admin and request.query_params.get("reveal") == "1"
    figure = None
    if wanted:
        async with console.config.engine.connect() as conn:
            figure = await learner_timeline(
                conn, wanted, reader.scope, _context(console), reveal=reveal
            )
    return console.render(
        reader,
        "learner.html",
        status=404 if wanted and figure is None else 200,
        request=request,
        pseudonym=wanted,
        reveal=reveal,
        figure=None if figure is None else figure_view(figure, reader.ui),
    )


async def report_page(console: Console, request: Request) -> Response:
    """GET /console/cohorts/<id>/report: the cohort's figures, laid out to print as a PDF."""
    reader = await console.reader(request)
    if reader.user is None:
        return console.to_sign_in(request)
    cohort = await readers_cohort(console, reader, request.path_params["cohort"])
    if cohort is None:
        return console.not_found(reader, request)
    params = {name: request.query_params.get(name, "") for name in ("since", "until", "course")}
    try:
        filters = parse_filters(params, console.config.courses)
    except FilterError as exc:
        return console.error(reader, 400, reader.ui.render(exc.text), request=request)
    filters = Filters(since=filters.since, until=filters.until, course_id=filters.course_id)
    await console.fold_rollups()
    async with console.config.engine.connect() as conn:
        figures = await cohort_report(conn, cohort.id, reader.scope, _context(console), filters)
    return console.render(
        reader,
        "report.html",
        request=request,
        cohort=cohort,
        filters=filters,
        generated=utcnow(),
        figures=[figure_view(figure, reader.ui) for figure in figures],
    )
