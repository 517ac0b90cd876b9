"""The console's reading side: home, the figure pages, and a figure's CSV download."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from bot.analytics.figures import Figure, FigureContext, Filters, Page
from bot.store.db import utcnow
from bot.trainers.cohorts import cohort_names, list_cohorts
from bot.web.console.app import SECURITY_HEADERS, Console, Reader
from bot.web.console.filters import FilterError, filter_query, parse_filters
from bot.web.console.render import figure_csv, figure_view


async def home(console: Console, request: Request) -> Response:
    """GET /console: the reader's cohorts and the pages, once signed in."""
    reader = await console.reader(request)
    if reader.user is None:
        return console.to_sign_in(request)
    async with console.config.engine.connect() as conn:
        cohorts = await list_cohorts(conn, reader.user)
    return console.render(reader, "home.html", request=request, cohorts=cohorts)


async def _figures(
    console: Console, reader: Reader, page: Page, filters: Filters
) -> Sequence[Figure]:
    config = console.config
    context = FigureContext(
        courses=config.courses,
        secret_key=config.settings.secret_key,
        segment_prices=config.segment_prices,
        now=utcnow(),
    )
    await console.fold_rollups()
    async with config.engine.connect() as conn:
        return await page.build(conn, filters, reader.scope, context)


async def _page_request(
    console: Console, request: Request
) -> tuple[Reader, Page, Filters] | Response:
    """The reader, page and filters of a figure request, or the response that refuses it."""
    reader = await console.reader(request)
    if reader.user is None:
        return console.to_sign_in(request)
    page = console.page_by_key(request.path_params["page"])
    if page is None:
        return console.not_found(reader, request)
    params = {
        name: request.query_params.get(name, "") for name in ("since", "until", "cohort", "course")
    }
    try:
        filters = parse_filters(params, console.config.courses)
    except FilterError as exc:
        message = reader.ui.gettext(
            "Filter %(field)s: %(problem)s",
            field=_field_label(reader, exc.field),
            problem=reader.ui.render(exc.text),
        )
        return console.error(reader, 400, message, request=request)
    # Another trainer's cohort does not exist, as far as this reader can tell.
    if filters.cohort_id is not None and not reader.scope.allows(filters.cohort_id):
        return console.not_found(reader, request)
    return reader, page, filters


def _field_label(reader: Reader, field: str) -> str:
    t = reader.ui
    labels = {
        "since": t.gettext("From"),
        "until": t.gettext("To"),
        "cohort": t.gettext("Cohort"),
        "course": t.gettext("Course"),
    }
    return labels.get(field, field)


async def figure_page(console: Console, request: Request) -> Response:
    """GET /console/<page>: the page's figures under the filters, each with its table."""
    found = await _page_request(console, request)
    if isinstance(found, Response):
        return found
    reader, page, filters = found
    figures = await _figures(console, reader, page, filters)
    assert reader.user is not None
    async with console.config.engine.connect() as conn:
        cohorts = await cohort_names(conn, reader.user)  # the menu: no counts, it must be fast
    return console.render(
        reader,
        "page.html",
        request=request,
        page=page,
        filters=filters,
        query=filter_query(filters),
        figures=[figure_view(figure, reader.ui) for figure in figures],
        cohorts=cohorts,
        courses=sorted(console.config.courses),
        has_chart=any(figure.chart is not None and figure.rows for figure in figures),
    )


async def figure_download(console: Console, request: Request) -> Response:
    """GET /console/<page>/<figure>.csv: that figure's table, with the same filters."""
    found = await _page_request(console, request)
    if isinstance(found, Response):
        return found
    reader, page, filters = found
    key = request.path_params["figure"]
    figures = await _figures(console, reader, page, filters)
    figure = next((figure for figure in figures if figure.key == key), None)
    if figure is None:
        return console.not_found(reader, request)
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="{page.key}-{figure.key}.csv"',
    }
    return StreamingResponse(
        figure_csv(figure), media_type="text/csv; charset=utf-8", headers=headers
    )


def redirect_home() -> Response:
    """Back to the console's home."""
    return RedirectResponse("/console", status_code=303)
