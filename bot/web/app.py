"""The one ASGI app: health, the sandbox chat simulator, the console and provider webhooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from bot.channels.base import Channel
from bot.channels.sandbox import SandboxChannel
from bot.domain import ChannelName
from bot.web.console.app import ConsoleConfig
from bot.web.console.routes import console_routes
from bot.web.health import health_routes
from bot.web.protocols import DialogueLike, TranslationsLike, UiCatalogsLike
from bot.web.sandbox import sandbox_routes
from bot.web.sandbox_limits import SandboxLimits
from bot.web.store_errors import store_error_handlers

__all__ = ["DialogueLike", "TranslationsLike", "UiCatalogsLike", "create_app"]

STATIC_DIR = Path(str(resources.files("bot.web").joinpath("static")))


def create_app(
    *,
    dialogue: DialogueLike,
    channels: Mapping[ChannelName, Channel],
    engine: AsyncEngine,
    ui: UiCatalogsLike,
    sandbox_enabled: bool = False,
    sandbox_limits: SandboxLimits | None = None,
    sms_max_segments: int = 3,
    extra_routes: Sequence[BaseRoute] = (),
    console: ConsoleConfig | None = None,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
) -> Starlette:
    """Build the Starlette app; `/sandbox` needs a `SandboxChannel` under `ChannelName.SANDBOX`.

    The sandbox is public and anonymous: it is served only when `sandbox_enabled`
    (`Settings.sandbox_enabled`); otherwise `/sandbox`, its API and its assets are 404.
    With `console`, `/console` serves its pages (`console.pages`) to signed-in users.
    """
    routes: list[BaseRoute] = [*health_routes(engine)]
    if sandbox_enabled:
        sandbox = channels.get(ChannelName.SANDBOX)
        if not isinstance(sandbox, SandboxChannel):
            raise ValueError("sandbox_enabled needs a SandboxChannel under ChannelName.SANDBOX")
        routes += sandbox_routes(
            dialogue=dialogue,
            channels=channels,
            sandbox=sandbox,
            ui=ui,
            sms_max_segments=sms_max_segments,
            limits=sandbox_limits,
        )
        routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    if console is not None:
        routes += console_routes(console)
    # Provider webhooks (/webhooks/telegram, /webhooks/twilio/...) come from their channels.
    routes += extra_routes
    # A write the store refused answers 503 on every route, so providers retry it.
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers=dict(store_error_handlers(engine))
    )
