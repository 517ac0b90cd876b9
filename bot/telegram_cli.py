"""`learnbot telegram ...` (webhook and command menu set-up) and the long-polling runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import click
from telegram import Bot, BotCommand, Update
from telegram.error import InvalidToken, TelegramError

from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.i18n import SHIPPED_LOCALES, SOURCE_LOCALE, UiCatalogs, UiTranslator
from bot.redaction import redactor_for
from bot.store.availability import StoreOutage, unavailable_reason
from bot.web.telegram import ALLOWED_UPDATES, WEBHOOK_PATH, TelegramUpdateHandler

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_SECONDS = 25  # Telegram holds a getUpdates call open this long when there is nothing
MAX_BACKOFF_SECONDS = 60.0
_WORD = "\x00"  # stands in for the command word in the HELP lines we reuse as descriptions


def webhook_url(settings: Settings) -> str:
    """Where Telegram posts updates: LEARNBOT_PUBLIC_URL + /webhooks/telegram."""
    return settings.public_url.rstrip("/") + WEBHOOK_PATH


def bot_commands(tr: UiTranslator) -> list[BotCommand]:
    """The command menu in one locale: the HELP lines' own translations, without the word."""
    # The same strings HELP shows, so every shipped locale already translates them.
    lines = {
        "next": tr.gettext("%(word)s: the next lesson"),
        "progress": tr.gettext("%(word)s: your progress and quiz score"),
        "language": tr.gettext("%(word)s: choose your language"),
        "zone": tr.gettext("%(word)s: set your time zone"),
        "stop": tr.gettext("%(word)s: stop all messages"),
    }
    descriptions = {name: _without_word(line % {"word": _WORD}) for name, line in lines.items()}
    others = " ".join(f"/{name}" for name in lines)
    descriptions["help"] = f"{tr.gettext('You can send:')} {others}"
    order = ("next", "progress", "language", "zone", "help", "stop")
    return [BotCommand(name, descriptions[name][:256]) for name in order]


def _without_word(text: str) -> str:
    rest = text.replace(_WORD, "").strip(" :：-–—\u00a0\u200f\u2068\u2069")
    return rest[:1].upper() + rest[1:]


async def set_commands(bot: Bot, ui: UiCatalogs, default_locale: str) -> list[str]:
    """setMyCommands for every shipped locale and as the default; the language codes set."""
    done: list[str] = []
    for locale in SHIPPED_LOCALES:
        language = locale.split("_")[0]
        if language == SOURCE_LOCALE and default_locale == SOURCE_LOCALE:
            continue  # the default menu below is the source locale's
        await bot.set_my_commands(bot_commands(ui.translations(locale)), language_code=language)
        done.append(language)
    # Users whose Telegram language is none of ours see the default locale's menu.
    await bot.set_my_commands(bot_commands(ui.translations(default_locale)))
    done.append("default")
    return done


async def run_polling(
    bot: Bot,
    handler: TelegramUpdateHandler,
    *,
    stop: asyncio.Event | None = None,
    drop_pending_updates: bool = False,
    poll_seconds: int = POLL_SECONDS,
) -> None:
    """Long-poll getUpdates and feed each update to `handler`, in order, until `stop` is set."""
    stop = stop or asyncio.Event()
    # getUpdates is refused while a webhook is set: polling replaces it.
    await bot.delete_webhook(drop_pending_updates=drop_pending_updates)
    offset: int | None = None
    backoff = 1.0
    outage = StoreOutage("telegram polling")
    while not stop.is_set():
        poll = asyncio.ensure_future(
            bot.get_updates(
                offset=offset,
                timeout=poll_seconds,
                allowed_updates=list(ALLOWED_UPDATES),
                read_timeout=poll_seconds + 10,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not poll.done():
            poll.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await poll
            return
        try:
            updates = poll.result()
        except TelegramError as exc:
            # Network trouble or another poller (Conflict): wait, then ask again.
            log.warning("telegram: getUpdates failed (%s); retrying in %.0f s", exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            continue
        backoff = 1.0
        for update in updates:
            if not await _handle_until_stored(handler, update, stop, outage):
                return  # stopped while the store refused it: not confirmed, read again later
            # Confirmed by the next call's offset, so a crash re-reads it; de-dup covers that.
            offset = update.update_id + 1


async def _handle_until_stored(
    handler: TelegramUpdateHandler, update: Update, stop: asyncio.Event, outage: StoreOutage
) -> bool:
    """Handle one update, again and again while the store refuses it; False if stopped first.

    An update is confirmed by the next getUpdates' offset: confirming one the store refused
    would lose it, as a webhook answering 200 would.
    """
    while True:
        try:
            await handler.handle(update)
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                log.exception("telegram: update %s failed", update.update_id)
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), outage.refused(reason))
            if stop.is_set():
                return False
            continue
        outage.succeeded()
        return True


@contextlib.asynccontextmanager
async def polling(bot: Bot, handler: TelegramUpdateHandler) -> AsyncIterator[asyncio.Task[None]]:
    """Long-poll in a background task while the block runs (`serve --telegram-polling`)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_polling(bot, handler, stop=stop))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TelegramError):
            await asyncio.wait_for(task, 10)


@click.group()
def telegram() -> None:
    """Connect the Telegram bot: webhook and command menu."""


def _channel() -> tuple[Settings, TelegramChannel]:
    from bot.cli import load_settings

    settings = load_settings()
    if not settings.telegram_enabled:
        raise click.ClickException("TELEGRAM_BOT_TOKEN is not set")
    return settings, TelegramChannel.from_settings(settings)


@telegram.command("set-webhook")
@click.option(
    "--drop-pending-updates", is_flag=True, help="Forget updates Telegram holds for the bot."
)
def set_webhook(drop_pending_updates: bool) -> None:
    """Register LEARNBOT_PUBLIC_URL/webhooks/telegram with TELEGRAM_WEBHOOK_SECRET."""
    settings, channel = _channel()
    if settings.telegram_webhook_secret is None:
        raise click.ClickException("TELEGRAM_WEBHOOK_SECRET is not set: the webhook would be open")
    url = webhook_url(settings)
    if not url.startswith("https://"):
        raise click.ClickException(
            "LEARNBOT_PUBLIC_URL: Telegram only posts to https:// URLs, "
            f"got {settings.public_url!r}"
        )

    async def run() -> None:
        try:
            await channel.bot.set_webhook(
                url,
                secret_token=settings.telegram_webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=drop_pending_updates,
            )
        finally:
            await channel.aclose()

    _run(run(), settings)
    click.echo(f"webhook set: {url}")


@telegram.command("set-commands")
def set_commands_command() -> None:
    """setMyCommands (/next /progress /language /zone /help /stop) in every shipped locale."""
    settings, channel = _channel()
    ui = UiCatalogs(settings.locales_dir, default=settings.default_locale)

    async def run() -> list[str]:
        try:
            return await set_commands(channel.bot, ui, settings.default_locale)
        finally:
            await channel.aclose()

    languages = _run(run(), settings)
    click.echo(f"commands set for: {', '.join(languages)}")


def _run(coroutine: Coroutine[Any, Any, T], settings: Settings) -> T:
    try:
        return asyncio.run(coroutine)
    except InvalidToken as exc:
        # PTB's own message may quote the token whole; say which setting instead.
        raise click.ClickException("TELEGRAM_BOT_TOKEN: Telegram rejected the token") from exc
    except TelegramError as exc:
        reason = redactor_for(settings)(str(exc))
        raise click.ClickException(f"Telegram refused: {reason}") from exc


__all__ = ["bot_commands", "run_polling", "set_commands", "telegram", "webhook_url"]
