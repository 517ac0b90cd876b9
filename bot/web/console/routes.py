"""The console's URLs, under /console: sign-in, pages, CSV downloads, actions, its assets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.web.console import actions, auth, pages, records
from bot.web.console.app import STATIC, Console, ConsoleConfig
from bot.web.console.throttle import SignInThrottle

Handler = Callable[[Console, Request], Awaitable[Response]]


def console_routes(
    config: ConsoleConfig, *, throttle: SignInThrottle | None = None
) -> list[BaseRoute]:
    """Every console route; the fixed ones come before `/console/<page>`."""
    console = Console(config, throttle=throttle)

    def bound(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(console, request)

        endpoint.__name__ = handler.__name__
        return endpoint

    def route(path: str, handler: Handler, methods: list[str] | None = None) -> Route:
        return Route(path, bound(handler), methods=methods or ["GET"])

    return [
        Mount("/console/static", StaticFiles(directory=STATIC), name="console-static"),
        route("/console", pages.home),
        route("/console/sign-in", auth.sign_in_page),
        route("/console/sign-in", auth.sign_in, ["POST"]),
        route("/console/sign-out", auth.sign_out, ["POST"]),
        route("/console/language", auth.choose_language),
        route("/console/invite/{token}", auth.invitation_page),
        route("/console/invite/{token}", auth.accept, ["POST"]),
        route("/console/cohorts/{cohort}", actions.cohort_page),
        route("/console/cohorts/{cohort}/report", records.report_page),
        route("/console/learners", records.learner_page),
        route("/console/cohorts/{cohort}/status", actions.change_status, ["POST"]),
        route("/console/cohorts/{cohort}/push", actions.start, ["POST"]),
        route("/console/cohorts/{cohort}/import", actions.import_csv, ["POST"]),
        route("/console/cohorts/{cohort}/requeue", actions.requeue_failed, ["POST"]),
        route("/console/pushes/{push}", actions.progress),
        route("/console/pushes/{push}/cancel", actions.cancel, ["POST"]),
        route("/console/{page}", pages.figure_page),
        route("/console/{page}/{figure}.csv", pages.figure_download),
    ]
