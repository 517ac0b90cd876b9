"""Builds the running parts from settings: store, courses, catalogs, dialogue, channels, app."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from telegram.error import InvalidToken, TelegramError

from bot.analytics.console.pages import PAGES
from bot.analytics.figures import Page
from bot.channels.base import Channel
from bot.channels.configured import configured_channels, sms_configured, whatsapp_configured
from bot.channels.sandbox import SandboxChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.twilio import TwilioChannel
from bot.config import DEFAULT_DATABASE_URL, ConfigError, Settings
from bot.delivery import deliver
from bot.dialogue import Dialogue
from bot.domain import ChannelName, OutboundMessage
from bot.i18n import UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import LoadedCourse, load_courses
from bot.redaction import install_secret_filter, redactor_for
from bot.store.cohort_names import add_missing_names
from bot.store.db import create_engine
from bot.store.migrate import upgrade
from bot.store.preflight import DatabaseCheckError, check_database
from bot.telegram_cli import polling
from bot.web.app import create_app
from bot.web.console.app import ConsoleConfig
from bot.web.telegram import TelegramStaffCommands, TelegramUpdateHandler, telegram_extras
from bot.web.twilio import twilio_routes

if TYPE_CHECKING:
    from scheduler.xapi_forwarder import XapiForwarder

log = logging.getLogger(__name__)

DEMO_JOIN_CODE = "DEMO"


def N_(message: str) -> str:
    """Mark a string for the UI catalog; it is translated where it is shown."""
    return message


DEMO_COHORT_NAME = N_("Demo cohort")

# Provider channels: a turn's replies go into the outbox with its writes (the sandbox answers
# directly, in the request).
OUTBOX_CHANNELS = frozenset({ChannelName.TELEGRAM, ChannelName.SMS, ChannelName.WHATSAPP})


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a running learnbot holds, built once at start-up."""

    settings: Settings
    engine: AsyncEngine
    courses: Mapping[str, LoadedCourse]
    ui: UiCatalogs
    dialogue: Dialogue
    channels: Mapping[ChannelName, Channel]

    async def close(self) -> None:
        """Release the dialogue's connections and the engine's pool."""
        await self.dialogue.aclose()
        for channel in self.channels.values():
            if isinstance(channel, TwilioChannel | TelegramChannel):
                await channel.aclose()
        await self.engine.dispose()

    async def on_replies(self, replies: Sequence[OutboundMessage]) -> None:
        """Deliver what a webhook's turn returned directly (outbox channels return nothing)."""
        settings = self.settings
        await deliver(
            replies,
            self.channels,
            sms_max_segments=settings.sms_max_segments,
            sms_fold=settings.sms_fold,
        )

    @property
    def telegram(self) -> TelegramChannel | None:
        """The Telegram channel, when a bot token is configured."""
        channel = self.channels.get(ChannelName.TELEGRAM)
        return channel if isinstance(channel, TelegramChannel) else None

    def telegram_handler(self) -> TelegramUpdateHandler:
        """The update handler the webhook and `serve --telegram-polling` share."""
        assert self.telegram is not None
        return TelegramUpdateHandler(
            bot=self.telegram.bot,
            dialogue=self.dialogue,
            on_replies=self.on_replies,
            staff=TelegramStaffCommands(
                self.engine, self.courses, self.ui, channels=frozenset(self.channels)
            ),
        )

    def app(self) -> Starlette:
        """The ASGI app serving health, the sandbox and the provider webhooks."""
        extra: list[BaseRoute] = []
        if self.settings.twilio_enabled:
            extra += twilio_routes(
                settings=self.settings,
                dialogue=self.dialogue,
                engine=self.engine,
                on_replies=self.on_replies,
            )
        if self.telegram is not None:
            extra += telegram_extras(
                self.settings,
                self.dialogue,
                self.engine,
                self.courses,
                self.telegram,
                self.on_replies,
            )
        return create_app(
            dialogue=self.dialogue,
            channels=self.channels,
            engine=self.engine,
            ui=self.ui,
            sandbox_enabled=self.settings.sandbox_enabled,
            extra_routes=extra,
            console=self.console(PAGES),
            lifespan=scheduler_lifespan(self),
        )

    def console(self, pages: Sequence[Page] = ()) -> ConsoleConfig:
        """The console over this runtime, showing `pages` (the analytics layer's figure pages)."""
        return ConsoleConfig(
            settings=self.settings,
            engine=self.engine,
            ui=self.ui,
            courses=self.courses,
            pages=pages,
            channels=frozenset(str(channel) for channel in configured_channels(self.settings)),
            segment_prices=self.settings.sms_prices,
        )


async def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Migrate the store, load and validate every course, and wire the dialogue."""
    if migrate:
        # Alembic runs its own event loop inside; keep it off ours.
        await asyncio.to_thread(upgrade, settings.database_url)
    courses = load_courses(settings.lessons_dir)  # raises naming file, line and field
    content = load_translations(courses.values(), settings.locales_dir)
    ui = UiCatalogs(settings.locales_dir, default=settings.default_locale)
    engine = create_engine(settings.database_url)
    dialogue = Dialogue(
        engine,
        courses,
        content,
        ui,
        default_locale=settings.default_locale,
        outbox_channels=OUTBOX_CHANNELS,
        whatsapp_templates=settings.twilio_whatsapp_templates,
    )
    channels: dict[ChannelName, Channel] = {ChannelName.SANDBOX: SandboxChannel()}
    if settings.twilio_enabled:
        channels.update(twilio_channels(settings))
    if settings.telegram_enabled:
        channels[ChannelName.TELEGRAM] = TelegramChannel.from_settings(settings)
    return Runtime(settings, engine, courses, ui, dialogue, channels)


def scheduler_lifespan(
    runtime: Runtime,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Plan, reminders, housekeeping and the outbox dispatcher, for the app's lifetime."""
    from scheduler.app import SchedulerApp
    from scheduler.dispatcher import Dispatcher
    from scheduler.ratelimit import limiter_for

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        settings = runtime.settings
        dispatcher = Dispatcher(
            runtime.engine,
            runtime.channels,
            runtime.dialogue,
            # On PostgreSQL each channel's rate is shared by every serving process.
            limiters={
                name: limiter_for(name, settings, runtime.engine) for name in runtime.channels
            },
            sms_max_segments=settings.sms_max_segments,
            sms_fold=settings.sms_fold,
            runner=runtime.dialogue.runner,  # SQLite: claims and writes inline, like turns
        )
        runtime.dialogue.on_enqueued = dispatcher.wake  # replies queued by a turn go at once
        jobs = SchedulerApp(
            runtime.engine,
            runtime.courses,
            dispatcher,
            misfire_grace=settings.misfire_grace,
            forwarder=xapi_forwarder(runtime),
        )
        await jobs.start()
        try:
            yield
        finally:
            await jobs.shutdown()
            runtime.dialogue.on_enqueued = None
            if jobs.forwarder is not None:
                await jobs.forwarder.client.aclose()

    return lifespan


def xapi_forwarder(runtime: Runtime) -> XapiForwarder | None:
    """The forwarder of the event log to the LRS; None while LEARNBOT_XAPI_ENDPOINT is unset."""
    from bot.analytics.xapi.statements import StatementMapper
    from scheduler.lrs_client import LrsClient
    from scheduler.xapi_forwarder import XapiForwarder

    settings = runtime.settings
    if settings.xapi_endpoint is None:
        return None
    client = LrsClient(settings.xapi_endpoint, settings.xapi_username, settings.xapi_password)
    mapper = StatementMapper(settings.public_url, settings.secret_key, runtime.courses)
    return XapiForwarder(runtime.engine, client, mapper, batch=settings.xapi_batch)


def twilio_channels(settings: Settings) -> dict[ChannelName, Channel]:
    """The SMS and WhatsApp channels whose senders are configured."""
    channels: dict[ChannelName, Channel] = {}
    # The same tests as `configured_channels`, which pushes use to find unreachable learners.
    if sms_configured(settings):
        channels[ChannelName.SMS] = TwilioChannel.sms_from_settings(settings)
    if whatsapp_configured(settings):
        channels[ChannelName.WHATSAPP] = TwilioChannel.whatsapp_from_settings(settings)
    return channels


async def ensure_demo_cohort(runtime: Runtime) -> int:
    """Create (once) the self-paced demo cohort with join code DEMO on every shipped course.

    It is open to the sandbox: the one cohort `/sandbox` can join without a trainer's say.
    """
    ordered = _pathway_order(runtime.courses)
    cohort_id = await runtime.dialogue.create_cohort(
        name=DEMO_COHORT_NAME,
        join_code=DEMO_JOIN_CODE,
        course_ids=ordered,
        time_zone="UTC",
        open_to_sandbox=True,
    )
    # Its name in every locale with a translation, so "Welcome to ..." reads in one
    # language; names given since (`cohort name`) are kept.
    ui = runtime.ui
    names = {
        locale: translated
        for locale in ui.available_locales()
        if locale != ui.source
        and (translated := ui.translations(locale).gettext(DEMO_COHORT_NAME)) != DEMO_COHORT_NAME
    }
    async with runtime.engine.begin() as conn:
        await add_missing_names(conn, cohort_id, names)
    return cohort_id


def _pathway_order(courses: Mapping[str, LoadedCourse]) -> list[str]:
    """Course ids with every prerequisite before the courses that require it."""
    ordered: list[str] = []

    def visit(course_id: str) -> None:
        if course_id in ordered:
            return
        for required in courses[course_id].course.requires:
            visit(required)
        ordered.append(course_id)

    for course_id in sorted(courses):
        visit(course_id)
    return ordered


def freeze_startup_heap() -> None:
    """Move everything loaded at startup out of the garbage collector's sight.

    Courses, catalogs, Babel's locale data and the libraries make a heap of about a million
    long-lived objects; each full collection walked all of them, pausing the loop for 100 ms
    and more (measured under load), a stall every webhook then queued behind. Frozen objects
    are never collected; what the server creates later still is.
    """
    gc.collect()
    gc.freeze()


def bind_socket(host: str, port: int, *, setting: str = "LEARNBOT_PORT") -> socket.socket:
    """The listening socket uvicorn will serve on; ConfigError naming `setting` if refused.

    Bound before anything starts: uvicorn binds only after the app's lifespan (the scheduler)
    is up, and on failure exits from under it, with a traceback from APScheduler.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"LEARNBOT_HOST: cannot listen on {host!r}: {_strerror(exc)}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{setting}: cannot listen on {host}:{port}: {_strerror(exc)}") from None
    sock.set_inheritable(True)
    return sock


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc)


async def check_startup(settings: Settings) -> None:
    """ConfigError naming the setting when the database cannot be opened or written."""
    try:
        await check_database(
            settings.database_url, create_folder=settings.database_url == DEFAULT_DATABASE_URL
        )
    except DatabaseCheckError as exc:
        raise ConfigError(str(exc)) from None


async def _initialize_telegram(runtime: Runtime) -> None:
    assert runtime.telegram is not None
    redact = redactor_for(runtime.settings)
    try:
        await runtime.telegram.initialize()  # checks the token (getMe) before serving
    except InvalidToken:
        raise ConfigError("TELEGRAM_BOT_TOKEN: Telegram rejected the token") from None
    except TelegramError as exc:
        raise ConfigError(
            f"TELEGRAM_API_URL: the Bot API refused getMe: {redact(str(exc))}"
        ) from None


async def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    telegram_polling: bool = False,
    port_setting: str = "LEARNBOT_PORT",
) -> None:
    """Run learnbot under uvicorn until interrupted; ConfigError for what stops start-up."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_secret_filter(settings)
    # Port and database first, before any log line: a refusal is then the only line printed.
    sock = bind_socket(host, port, setting=port_setting)
    try:
        await check_startup(settings)
        await _serve_on(sock, settings, host=host, port=port, telegram_polling=telegram_polling)
    finally:
        sock.close()


async def _serve_on(
    sock: socket.socket, settings: Settings, *, host: str, port: int, telegram_polling: bool
) -> None:
    if telegram_polling and not settings.telegram_enabled:
        raise ConfigError("--telegram-polling needs TELEGRAM_BOT_TOKEN")
    runtime = await build_runtime(settings)
    try:
        if settings.sandbox_enabled:
            # The sandbox page tells visitors to type JOIN DEMO: the cohort must be there.
            cohort_id = await ensure_demo_cohort(runtime)
            log.info("demo cohort %s ready: join code %s", cohort_id, DEMO_JOIN_CODE)
        if runtime.telegram is not None:
            await _initialize_telegram(runtime)
        # No access log: one line per webhook costs more than the webhook itself. No log
        # config of uvicorn's own: its lines go to the root handlers, through the secret filter.
        config = uvicorn.Config(
            runtime.app(),
            host=host,
            port=port,
            log_level="info",
            access_log=False,
            log_config=None,
        )
        if settings.sandbox_enabled:
            log.info("sandbox at http://%s:%s/sandbox", host, port)
        else:
            log.info("sandbox off (LEARNBOT_SANDBOX=1 or LEARNBOT_DEMO=1 turns it on)")
        server = uvicorn.Server(config)
        freeze_startup_heap()
        if telegram_polling and runtime.telegram is not None:
            async with polling(runtime.telegram.bot, runtime.telegram_handler()):
                await server.serve(sockets=[sock])
        else:
            await server.serve(sockets=[sock])
    finally:
        await runtime.close()
