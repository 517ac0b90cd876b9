"""The console's shared parts: its settings, the reader of a request, pages from templates."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bot.analytics.figures import Page, Scope
from bot.config import Settings
from bot.i18n import SHIPPED_LOCALES, UiCatalogs, is_rtl, language_name
from bot.lessons.loader import LoadedCourse, teaching_by_course
from bot.store import rollups
from bot.store.availability import unavailable_reason
from bot.store.db import utcnow
from bot.trainers.cohorts import cohort_ids_for
from bot.trainers.passwords import current_hash
from bot.trainers.roles import UserRecord, user_by_id
from bot.trainers.text import CliUi, Text, TrainerError, status_word
from bot.web.console.csrf import FIELD as CSRF_FIELD
from bot.web.console.csrf import valid_token
from bot.web.console.sessions import Session, SessionCookies, fingerprint
from bot.web.console.throttle import SignInThrottle
from bot.web.limits import BodyRefused, declared_length
from bot.web.locale import negotiate

log = logging.getLogger(__name__)

TEMPLATES = Path(str(resources.files("bot.web").joinpath("templates/console")))
STATIC = Path(str(resources.files("bot.web").joinpath("static/console")))
LANGUAGE_COOKIE = "learnbot_console_lang"
SIGN_IN_PATH = "/console/sign-in"
MAX_FORM_BYTES = 64 * 1024  # every console form but the CSV import fits in far less
# Script and styles from learnbot itself only; nothing may frame the console.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # an invitation's token is in its URL
    "Cache-Control": "no-store",  # figures and learners' data stay off shared caches
}


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """What the console needs from the running bot; `pages` are the figure pages it shows."""

    settings: Settings
    engine: AsyncEngine
    ui: UiCatalogs
    courses: Mapping[str, LoadedCourse]
    pages: Sequence[Page]
    channels: Collection[str]  # the configured channels: a push queues only for these
    # Estimated price of one SMS segment per country, for the delivery figures.
    segment_prices: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads a console page, in which language, and what they may see."""

    session: Session
    user: UserRecord | None
    locale: str
    ui: CliUi
    scope: Scope
    fresh_session: bool  # the cookie must be (re)written with the response

    @property
    def rtl(self) -> bool:
        """Whether the page is written right to left."""
        return is_rtl(self.locale)


class Console:
    """The console's state for one app: configuration, cookies, throttle and templates."""

    def __init__(self, config: ConsoleConfig, *, throttle: SignInThrottle | None = None) -> None:
        self.config = config
        self.cookies = SessionCookies(
            config.settings.secret_key, secure=config.settings.public_url.startswith("https://")
        )
        self.throttle = throttle or SignInThrottle()
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.locales = tuple(
            locale for locale in SHIPPED_LOCALES if locale in config.ui.available_locales()
        ) or (config.ui.source,)

    async def fold_rollups(self) -> None:
        """Bring the rollups up to the log before a figure is read, so figures are exact.

        A store that refuses writes (a read replica, a full disk) still serves the figures,
        as of the last fold: the failure is logged, the page is not refused.
        """
        try:
            await rollups.fold(
                self.config.engine, utcnow(), teaching_by_course(self.config.courses)
            )
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                raise
            log.warning("console figures as of the last fold: %s", reason)

    def page_by_key(self, key: str) -> Page | None:
        """The figure page with this URL segment, if any."""
        return next((page for page in self.config.pages if page.key == key), None)

    def reader_locale(self, request: Request) -> str:
        """The reader's choice (cookie), else their browser's languages, else the default."""
        chosen = request.cookies.get(LANGUAGE_COOKIE)
        default = self.config.ui.default or self.config.ui.source
        return negotiate(
            chosen if chosen in self.locales else None,
            request.headers.get("accept-language"),
            self.locales,
            default if default in self.locales else self.locales[0],
        )

    async def reader(self, request: Request) -> Reader:
        """The request's reader: their session (a new one if none), user, locale and scope."""
        session = self.cookies.read(request)
        fresh = session is None
        if session is None:
            session = self.cookies.new()
        user = None
        scope = Scope(cohort_ids=frozenset())
        if session.user_id is not None:
            async with self.config.engine.connect() as conn:
                found = await user_by_id(conn, session.user_id)
                stored = None if found is None else await current_hash(conn, found.id)
                # A new password (or none) ends the sessions signed in with the old one.
                if (
                    found is not None
                    and stored is not None
                    and (fingerprint(stored) == session.password)
                ):
                    user = found
                    scope = await reader_scope(conn, user)
            if user is None:
                session, fresh = session.signed_out(), True
        locale = self.reader_locale(request)
        ui = CliUi(locale, self.config.ui.translations(locale))
        return Reader(session, user, locale, ui, scope, fresh)

    def render(
        self,
        reader: Reader,
        template: str,
        *,
        status: int = 200,
        request: Request | None = None,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """A template in the reader's language, with the layout's shared values."""
        ui = reader.ui
        values = {
            "_": ui.gettext,
            "t": ui.translations.gettext,  # a message id held in a value (page titles)
            "ngettext": ui.ngettext,
            "pgettext": ui.pgettext,
            "status_word": lambda kind, status: status_word(ui, kind, status),
            "number": lambda n: ui.number(n),
            "moment": lambda when, zone="UTC": ui.datetime(when, zone),
            "said": lambda text: ui.render(text) if isinstance(text, Text | TrainerError) else text,
            "reader": reader,
            "user": reader.user,
            "lang": reader.locale.replace("_", "-"),
            "dir": "rtl" if reader.rtl else "ltr",
            "csrf_field": CSRF_FIELD,
            "csrf_token": reader.session.csrf,
            "pages": self.config.pages,
            "languages": [
                (locale, language_name(locale), locale.replace("_", "-")) for locale in self.locales
            ],
            "path": request.url.path if request is not None else "/console",
            **context,
        }
        html = self.templates.get_template(template).render(values)
        response = HTMLResponse(html, status_code=status, headers=dict(SECURITY_HEADERS))
        if headers:
            response.headers.update(headers)
        if reader.fresh_session:
            self.cookies.write(response, reader.session)
        return response

    def error(
        self, reader: Reader, status: int, message: str, *, request: Request | None = None
    ) -> HTMLResponse:
        """An error page: what went wrong, in the reader's language, with its status."""
        return self.render(reader, "error.html", status=status, request=request, message=message)

    def not_found(self, reader: Reader, request: Request | None = None) -> HTMLResponse:
        """The 404 page (also for what exists but is not the reader's to see)."""
        return self.error(
            reader, 404, reader.ui.gettext("There is no such page in the console."), request=request
        )

    def forbidden_form(self, reader: Reader, request: Request | None = None) -> HTMLResponse:
        """The 403 page of a form sent without its session's token."""
        return self.error(
            reader,
            403,
            reader.ui.gettext(
                "This form has expired or did not come from the console. "
                "Go back, reload the page and send it again."
            ),
            request=request,
        )

    async def checked_form(
        self, request: Request, reader: Reader, *, limit: int = MAX_FORM_BYTES, files: int = 0
    ) -> FormData | Response:
        """The POSTed form if it is small enough and carries its session's CSRF token.

        Otherwise the page that refuses it: 413/411 for a body too large or of unknown
        length (read before a byte of it), 403 for a missing or wrong token.
        """
        try:
            if declared_length(request, limit) is None:
                raise BodyRefused(411, "no Content-Length")  # browsers always send one
        except BodyRefused as refused:
            return self.error(
                reader,
                refused.status,
                reader.ui.gettext("The form is too large to send."),
                request=request,
            )
        form = await request.form(max_files=files, max_fields=1000, max_part_size=limit)
        # A session made for this very request has no form of its own yet.
        if not valid_token(None if reader.fresh_session else reader.session, form):
            return self.forbidden_form(reader, request)
        return form

    def to_sign_in(self, request: Request) -> Response:
        """Redirect a signed-out reader to the sign-in page, coming back here afterwards."""
        from urllib.parse import urlencode

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{SIGN_IN_PATH}?{urlencode({'next': target})}", status_code=303)


async def reader_scope(conn: AsyncConnection, user: UserRecord) -> Scope:
    """What a user may see: every cohort for an admin, their own cohorts for a trainer."""
    return Scope(cohort_ids=await cohort_ids_for(conn, user), is_admin=user.is_admin)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    if value and value.startswith("/console") and not value.startswith("//"):
        return value
    return "/console"
