"""Telegram inbound: the webhook route, and the update handler it shares with long polling.

An update becomes an `InboundMessage` (text, `/start CODE` deep link, or a button's callback
data) with provider_id `tg:<update_id>`, which the dialogue de-duplicates in its own
transaction. The dialogue runs before the 200, so a crash makes Telegram retry; the follow-up
(answering the callback query, removing the answered keyboard, delivering replies) runs after.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import Bot, Update
from telegram.constants import ChatType
from telegram.error import TelegramError

from bot.channels.telegram import TelegramApplication, TelegramChannel
from bot.config import Settings
from bot.domain import ChannelName, InboundMessage, OutboundMessage
from bot.i18n import UiCatalogs, UiTranslator, best_locale, format_number, isolate
from bot.lessons.loader import LoadedCourse
from bot.web.protocols import DialogueLike

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")
MAX_BODY_BYTES = 256 * 1024  # an update is a few KB; anything bigger is not from Telegram
PUSH_COMMAND = "/push"

OnReplies = Callable[[Sequence[OutboundMessage]], Awaitable[None]]


class StaffCommands(Protocol):
    """Commands trainers and admins send from their own Telegram chat (e.g. /push)."""

    async def __call__(
        self, chat_id: str, text: str, language_code: str | None = None
    ) -> str | None:
        """The reply to a staff command, or None when `text` is not one from a staff chat.

        `language_code` is the sender's Telegram language (IETF tag), for the reply's locale.
        """
        ...


def inbound_from_update(update: Update, *, now: datetime | None = None) -> InboundMessage | None:
    """The learner message an update carries, or None for updates we do not handle."""
    provider_id = f"tg:{update.update_id}"
    message = update.message
    if message is not None:
        # Learners talk to the bot privately; a group's chatter is nobody's answer.
        if message.chat.type != ChatType.PRIVATE or not message.text:
            return None
        return InboundMessage(
            channel=ChannelName.TELEGRAM,
            address=str(message.chat.id),
            text=message.text,  # "/start CODE" from a deep link is read as JOIN CODE
            provider_id=provider_id,
            received_at=message.date,
        )
    query = update.callback_query
    if query is not None and query.data:
        chat = query.message.chat if query.message is not None else None
        if chat is not None and chat.type != ChatType.PRIVATE:
            return None
        return InboundMessage(
            channel=ChannelName.TELEGRAM,
            address=str(chat.id if chat is not None else query.from_user.id),
            payload=query.data,
            provider_id=provider_id,
            received_at=now or datetime.now(UTC),
        )
    return None


@dataclass(frozen=True, slots=True)
class FollowUp:
    """What an update leaves to do once the turn is committed."""

    bot: Bot
    replies: Sequence[OutboundMessage]
    on_replies: OnReplies
    callback_query_id: str | None = None
    answered_message: tuple[int, int] | None = None  # (chat id, message id) of the keyboard
    staff_reply: tuple[str, str] | None = None  # (chat id, text)

    async def run(self) -> None:
        """Stop the button's spinner, remove the answered keyboard, then deliver the replies."""
        if self.callback_query_id is not None:
            await _quietly(self.bot.answer_callback_query(self.callback_query_id), "answer")
        if self.answered_message is not None:
            chat_id, message_id = self.answered_message
            # The question is answered: its buttons must not be pressed twice.
            edit = self.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
            await _quietly(edit, "remove the keyboard of")
        if self.staff_reply is not None:
            await _quietly(self.bot.send_message(*self.staff_reply), "reply to")
        if self.replies:
            try:
                await self.on_replies(self.replies)
            except Exception:
                # The turn is committed: a retried update would be a duplicate, so log it.
                log.exception("telegram: delivering %d replies failed", len(self.replies))


class TelegramUpdateHandler:
    """Runs one update through the dialogue; the webhook and the polling runner share it."""

    def __init__(
        self,
        *,
        bot: Bot,
        dialogue: DialogueLike,
        on_replies: OnReplies,
        staff: StaffCommands | None = None,
    ) -> None:
        self.bot = bot
        self.dialogue = dialogue
        self.on_replies = on_replies
        self.staff = staff

    def parse(self, data: Any) -> Update:
        """A PTB `Update` from decoded JSON; ValueError if it is not an update."""
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise ValueError("not a Telegram update: expected an object with an update_id")
        try:
            return Update.de_json(data, self.bot)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a Telegram update: {exc!r}") from exc

    async def process(self, update: Update) -> FollowUp | None:
        """Run the dialogue turn (committed on return); the follow-up work, if any."""
        staff_reply = await self._staff_command(update)
        if staff_reply is not None:
            return FollowUp(self.bot, (), self.on_replies, staff_reply=staff_reply)
        inbound = inbound_from_update(update)
        query = update.callback_query
        if inbound is None:
            if query is None:
                return None
            # A press we cannot use still needs an answer, or its button keeps spinning.
            return FollowUp(self.bot, (), self.on_replies, callback_query_id=query.id)
        replies = await self.dialogue.handle(inbound)
        if query is None:
            return FollowUp(self.bot, replies, self.on_replies)
        answered = None
        if query.message is not None:
            answered = (query.message.chat.id, query.message.message_id)
        return FollowUp(
            self.bot,
            replies,
            self.on_replies,
            callback_query_id=query.id,
            answered_message=answered,
        )

    async def handle(self, update: Update) -> None:
        """Process an update and do its follow-up at once (long polling)."""
        follow_up = await self.process(update)
        if follow_up is not None:
            await follow_up.run()

    async def _staff_command(self, update: Update) -> tuple[str, str] | None:
        message = update.message
        if self.staff is None or message is None or not message.text:
            return None
        if message.text.split(maxsplit=1)[0].split("@", 1)[0].lower() != PUSH_COMMAND:
            return None  # only /push is looked up: learners' messages cost no staff query
        chat_id = str(message.chat.id)
        language = message.from_user.language_code if message.from_user is not None else None
        reply = await self.staff(chat_id, message.text, language)
        return None if reply is None else (chat_id, reply)


def telegram_routes(
    *,
    settings: Settings,
    dialogue: DialogueLike,
    application_or_channel: TelegramChannel | TelegramApplication,
    on_replies: OnReplies,
    staff: StaffCommands | None = None,
) -> list[BaseRoute]:
    """`POST /webhooks/telegram`, checked against TELEGRAM_WEBHOOK_SECRET."""
    bot = application_or_channel.bot
    handler = TelegramUpdateHandler(bot=bot, dialogue=dialogue, on_replies=on_replies, staff=staff)
    secret = settings.telegram_webhook_secret
    if secret is None:
        log.warning("TELEGRAM_WEBHOOK_SECRET is not set: %s refuses every request", WEBHOOK_PATH)
    expected = secret.encode() if secret is not None else None

    async def webhook(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if expected is None or not hmac.compare_digest(given, expected):
            return Response(status_code=403)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response(status_code=413)
        try:
            update = handler.parse(json.loads(body))
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
            return Response(f"body: {exc}", status_code=400)
        follow_up = await handler.process(update)
        if follow_up is None:
            return Response(status_code=200)
        return Response(status_code=200, background=BackgroundTask(follow_up.run))

    return [Route(WEBHOOK_PATH, webhook, methods=["POST"], name="telegram_webhook")]


class TelegramStaffCommands:
    """`/push COHORT LESSON` from a trainer's or admin's own chat (users.telegram_chat_id).

    Replies speak the trainer's Telegram language (users have no locale column), through the
    UI catalogs and their fallback chains like the learners' replies.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        courses: Mapping[str, LoadedCourse],
        ui: UiCatalogs | None = None,
        *,
        channels: Collection[str] | None = None,
    ) -> None:
        self.engine = engine
        self.courses = courses
        # The channels this process sends on: learners on others are reported, not queued.
        self.channels = channels
        # Without catalogs (older callers), the default LEARNBOT_LOCALES_DIR: ./locales.
        self.ui = ui if ui is not None else UiCatalogs(Path("locales"))

    async def __call__(
        self, chat_id: str, text: str, language_code: str | None = None
    ) -> str | None:
        """Start the push and say what it does; None if the chat is not a staff member's."""
        from bot.trainers.cohorts import CohortError, find_cohort
        from bot.trainers.push import PushError, find_lesson, start_push
        from bot.trainers.roles import RoleError, can_act_on, user_by_telegram_chat

        words = text.split()
        async with self.engine.connect() as conn:
            user = await user_by_telegram_chat(conn, chat_id)
            cohort = await find_cohort(conn, words[1]) if user and len(words) == 3 else None
        if user is None:
            return None  # a learner typing /push: the dialogue answers it like any text
        locale = best_locale(
            language_code, self.ui.available_locales(), default=self.ui.default or self.ui.source
        )
        tr = self.ui.translations(locale)

        def iso(fragment: object) -> str:
            return isolate(str(fragment), locale)

        if len(words) != 3:
            return tr.gettext("Usage: %(usage)s (a cohort id or join code, and a lesson id)") % {
                "usage": iso("/push COHORT LESSON")
            }
        _, cohort_arg, lesson = words
        # The checks start_push makes, first here: each refusal in the trainer's language.
        if cohort is None:
            return tr.gettext("Push refused: no cohort has the id or join code %(cohort)s.") % {
                "cohort": iso(cohort_arg)
            }
        values = {"cohort": iso(cohort.name), "lesson": iso(lesson)}
        if not can_act_on(user, cohort.owner_id):
            return (
                tr.gettext(
                    "Push refused: cohort %(cohort)s belongs to another trainer (ask an admin)."
                )
                % values
            )
        if cohort.status != "active":
            return (
                tr.gettext("Push refused: cohort %(cohort)s is paused; resume it before pushing.")
                % values
            )
        try:
            find_lesson(cohort, lesson, self.courses)
        except PushError:
            return (
                tr.gettext("Push refused: no course of cohort %(cohort)s has a lesson %(lesson)s.")
                % values
            )
        try:
            push = await start_push(
                self.engine,
                user=user,
                cohort_id_or_code=cohort_arg,
                lesson_id=lesson,
                courses=self.courses,
                channels=self.channels,
            )
        except (RoleError, PushError, CohortError) as exc:
            # Changed since the checks above (e.g. paused meanwhile): the CLI's own words.
            return _refused(tr, iso(str(exc)))
        return _started(
            tr, locale, push.id, push.lesson_id, push.cohort_name, push.total, push.skipped
        ) + _unreachable(tr, locale, push.unreachable_by_channel())


def _refused(tr: UiTranslator, reason: str) -> str:
    return tr.gettext("Push refused: %(reason)s") % {"reason": reason}


def _started(
    tr: UiTranslator, locale: str, push_id: int, lesson: str, cohort: str, total: int, skipped: int
) -> str:
    return tr.ngettext(
        "Push %(push)s started: lesson %(lesson)s to %(total)s learner of %(cohort)s "
        "(%(skipped)s already had it).",
        "Push %(push)s started: lesson %(lesson)s to %(total)s learners of %(cohort)s "
        "(%(skipped)s already had it).",
        total,
    ) % {
        "push": isolate(str(push_id), locale),  # an id, not a quantity: no grouping
        "lesson": isolate(lesson, locale),
        "total": isolate(format_number(total, locale), locale),
        "cohort": isolate(cohort, locale),
        "skipped": isolate(format_number(skipped, locale), locale),
    }


def _unreachable(tr: UiTranslator, locale: str, found: Mapping[str, Sequence[object]]) -> str:
    """What follows the start line when some learners are on channels not configured."""
    total = sum(len(learners) for learners in found.values())
    if not total:
        return ""
    return " " + tr.ngettext(
        "%(count)s learner cannot be reached: %(channels)s not configured (not queued).",
        "%(count)s learners cannot be reached: %(channels)s not configured (not queued).",
        total,
    ) % {
        "count": isolate(format_number(total, locale), locale),
        "channels": isolate(", ".join(sorted(found)), locale),
    }


async def _quietly(call: Awaitable[Any], what: str) -> None:
    # Cosmetic calls: a stale or repeated callback query must not fail the update.
    try:
        await call
    except TelegramError as exc:
        log.info("telegram: could not %s the callback query: %s", what, exc)


def telegram_extras(
    settings: Settings,
    dialogue: DialogueLike,
    engine: AsyncEngine,
    courses: Mapping[str, LoadedCourse],
    channel: TelegramChannel,
    on_replies: OnReplies,
) -> list[BaseRoute]:
    """The webhook route as `serve` mounts it, with /push for staff chats."""
    return telegram_routes(
        settings=settings,
        dialogue=dialogue,
        application_or_channel=channel,
        on_replies=on_replies,
        staff=TelegramStaffCommands(
            engine, courses, UiCatalogs(settings.locales_dir, default=settings.default_locale)
        ),
    )
