"""Telegram through python-telegram-bot: rendered messages out, typed `SendError`s back."""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import SendError, SendErrorKind
from bot.config import Settings
from bot.domain import Button, ChannelName, RenderedMessage, SendResult

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # Telegram's limits, in UTF-16 code units
MAX_CAPTION = 1024
MAX_CALLBACK_BYTES = 64
SHORT_LABEL = 3  # buttons this short ("1".."5") share one row; longer ones get a row each
# Forbidden reasons that mean the account is gone rather than that the learner said no.
_GONE = ("user is deactivated",)
_NOT_FOUND = ("chat not found", "user not found", "peer_id_invalid")

TelegramApplication = Application[Any, Any, Any, Any, Any, Any]


class TelegramChannel:
    """Sends text, photos with captions and inline keyboards through one PTB `Bot`."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        self._application: TelegramApplication | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, request: BaseRequest | None = None
    ) -> TelegramChannel:
        """The channel for `TELEGRAM_BOT_TOKEN`, talking to `TELEGRAM_API_URL`."""
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        base = settings.telegram_api_url
        bot = Bot(
            settings.telegram_bot_token,
            base_url=base,
            # Files live under .../file/bot<token> next to .../bot<token> on every Bot API
            # server, Telegram's own and a local one.
            base_file_url=base.removesuffix("/bot") + "/file/bot",
            # A big pool: the dispatcher sends to many chats at once, each send its own call.
            request=request or HTTPXRequest(connection_pool_size=128),
        )
        return cls(bot)

    @property
    def name(self) -> ChannelName:
        """Always `ChannelName.TELEGRAM`."""
        return ChannelName.TELEGRAM

    @property
    def bot(self) -> Bot:
        """The PTB bot: for answering callback queries and registering the webhook."""
        return self._bot

    @property
    def application(self) -> TelegramApplication:
        """A PTB `Application` around the bot, without updater or job queue (we own both)."""
        if self._application is None:
            builder = ApplicationBuilder().bot(self._bot).updater(None).job_queue(None)
            self._application = builder.build()
        return self._application

    async def initialize(self) -> None:
        """Open the HTTP pool and check the token (getMe)."""
        await self.application.initialize()

    async def aclose(self) -> None:
        """Close the HTTP pool."""
        if self._application is not None and self._application.running:
            await self._application.stop()
        if self._application is not None:
            await self._application.shutdown()
        else:
            await self._bot.shutdown()

    async def send(self, message: RenderedMessage) -> SendResult:
        """Send a text, or a photo with its caption, with the buttons as an inline keyboard."""
        chat_id = message.address
        try:
            sent = await self._send(chat_id, message)
        except ChatMigrated as migrated:
            # A group became a supergroup: Telegram names the new chat, so deliver there once
            # and log it; the stored address stays a trainer's matter (learners chat privately).
            log.warning("telegram chat %s migrated to %s", chat_id, migrated.new_chat_id)
            try:
                sent = await self._send(str(migrated.new_chat_id), message)
            except TelegramError as exc:
                raise send_error_from(exc) from exc
        except TelegramError as exc:
            raise send_error_from(exc) from exc
        return SendResult(provider_message_id=str(sent.message_id))

    async def _send(self, chat_id: str, message: RenderedMessage) -> Message:
        keyboard = inline_keyboard(message.buttons)
        # Bold goes as entities, not parse_mode markup: the text (an author's or a learner's)
        # is sent as it is, with nothing to escape, and the length limits stay the text's.
        entities = BoldEntities(message.text, message.bold)
        if message.image_url is None:
            chunks = split_text(message.text, MAX_TEXT) or [" "]
            rest: list[str] = chunks
        else:
            caption, *rest = split_text(message.text, MAX_CAPTION) or [""]
            photo = await self._bot.send_photo(
                chat_id,
                message.image_url,
                caption=caption or None,
                caption_entities=entities.of(caption) if caption else None,
                reply_markup=None if rest else keyboard,
            )
            if not rest:
                return photo
            rest = [chunk for part in rest for chunk in split_text(part, MAX_TEXT)]
        sent: Message | None = None
        for index, chunk in enumerate(rest):
            last = index == len(rest) - 1
            sent = await self._bot.send_message(
                chat_id,
                chunk,
                entities=entities.of(chunk),
                reply_markup=keyboard if last else None,
            )
        assert sent is not None  # `rest` is never empty here
        return sent


class BoldEntities:
    """Bold ranges of a text as Telegram entities of each piece it is sent in, in order."""

    def __init__(self, text: str, bold: tuple[tuple[int, int], ...]) -> None:
        self._text = text
        self._bold = bold
        self._cursor = 0

    def of(self, piece: str) -> list[MessageEntity] | None:
        """The entities of the next piece (a substring of the text, after the previous one)."""
        if not self._bold:
            return None
        start = self._text.find(piece, self._cursor)
        if start < 0:
            return None  # not a piece of the text (" " for an empty one): nothing to mark
        self._cursor = start + len(piece)
        found = []
        for bold_start, bold_end in self._bold:
            # The part of the range inside this piece, in the piece's own UTF-16 offsets.
            low, high = max(bold_start, start), min(bold_end, start + len(piece))
            if low < high:
                found.append(
                    MessageEntity(
                        MessageEntity.BOLD,
                        offset=_utf16(piece[: low - start]),
                        length=_utf16(piece[low - start : high - start]),
                    )
                )
        return found or None


def inline_keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """Buttons as an inline keyboard: short labels on one row, longer ones one per row."""
    if not buttons:
        return None
    for button in buttons:
        size = len(button.payload.encode("utf-8"))
        if not 1 <= size <= MAX_CALLBACK_BYTES:
            raise SendError(
                SendErrorKind.PERMANENT,
                f"button {button.label!r}: callback data must be 1-{MAX_CALLBACK_BYTES} bytes, "
                f"got {size}",
            )
    keys = [InlineKeyboardButton(b.label, callback_data=b.payload) for b in buttons]
    if all(len(b.label) <= SHORT_LABEL for b in buttons):
        return InlineKeyboardMarkup([keys])
    return InlineKeyboardMarkup([[key] for key in keys])


def split_text(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` UTF-16 units, cut at a paragraph, line or space."""
    pieces: list[str] = []
    rest = text.strip()
    while _utf16(rest) > limit:
        head = _utf16_prefix(rest, limit)
        if rest[len(head)].isspace():
            cut = len(head)  # the limit falls on a space: nothing to move to the next piece
        else:
            cut = max(head.rfind("\n\n"), head.rfind("\n"), head.rfind(" "), 0) or len(head)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def send_error_from(exc: TelegramError) -> SendError:
    """Classify a PTB error for the dispatcher (which alone decides what follows)."""
    reason = exc.message
    lowered = reason.lower()
    if isinstance(exc, RetryAfter):
        return SendError(
            SendErrorKind.RETRYABLE, reason, code="429", retry_after=retry_after_seconds(exc)
        )
    if isinstance(exc, Forbidden):
        # Blocked, kicked, or "can't initiate conversation": the learner opted out.
        if any(gone in lowered for gone in _GONE):
            return SendError(SendErrorKind.UNREACHABLE, reason, code="403")
        return SendError(SendErrorKind.OPTED_OUT, reason, code="403")
    if isinstance(exc, BadRequest):  # before NetworkError: BadRequest is a subclass of it
        if any(missing in lowered for missing in _NOT_FOUND):
            return SendError(SendErrorKind.UNREACHABLE, reason, code="400")
        return SendError(SendErrorKind.PERMANENT, reason, code="400")
    if isinstance(exc, InvalidToken):
        return SendError(SendErrorKind.PERMANENT, reason, code="401")
    if isinstance(exc, TimedOut):
        return SendError(SendErrorKind.RETRYABLE, reason, code="timeout")
    if isinstance(exc, NetworkError):  # connection errors, 5xx, unexpected answers
        return SendError(SendErrorKind.RETRYABLE, reason, code="network")
    if isinstance(exc, ChatMigrated):
        return SendError(
            SendErrorKind.UNREACHABLE, f"{reason} (new chat id {exc.new_chat_id})", code="400"
        )
    return SendError(SendErrorKind.PERMANENT, reason)


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait Telegram asked for, in seconds (PTB 22 gives int or timedelta)."""
    with warnings.catch_warnings():
        # PTB warns that the attribute becomes a timedelta; we accept both.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _utf16_prefix(text: str, limit: int) -> str:
    # Characters outside the BMP (emoji) count twice in Telegram's limits.
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text
