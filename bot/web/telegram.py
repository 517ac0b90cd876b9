"""Telegram inbound: the webhook route, and the update handler it shares with long polling.

An update becomes an `InboundMessage` (text, `/start CODE` deep link, or a button's callback
data) with provider_id `tg:<update_id>`, which the dialogue de-duplicates in its own
transaction. The dialogue runs before the 200, so a crash makes Telegram retry; the follow-up
(answering the callback query, removing the answered keyboard, delivering replies) runs after,
and its failures are logged, never answered: the turn is committed.

The webhook checks, in this order: the secret token header (403), the body's size (413, from
Content-Length before reading, or as soon as a chunked body passes 256 KB), its Content-Type
(415 unless application/json), then the JSON. A body that is not a JSON object with an integer
update_id is 400: Telegram never sends one. An update whose fields the bot reads are missing,
of the wrong type or out of Telegram's own limits (no chat, text as a number, date 1e20) is 200
and one log line: Telegram retries every non-2xx answer for up to a day, and this one would fail
every time.
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
from bot.web.limits import BodyRefused, declared_length, media_type, plain, read_body
from bot.web.protocols import DialogueLike
from bot.web.telegram_checks import unusable

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")
MAX_BODY_BYTES = 256 * 1024  # an update is a few KB; anything bigger is not from Telegram
JSON_TYPE = "application/json"  # what Telegram posts


class NotAnUpdate(Exception):
    """A body that is not a Telegram update at all (answered 400)."""


class UnusableUpdate(Exception):
    """An update the bot can never process; answered 200 so Telegram does not retry it."""

    def __init__(self, update_id: int, reason: str) -> None:
        super().__init__(f"update {update_id}: {reason}")
        self.update_id = update_id
        self.reason = reason


def _decode(body: bytes) -> Any:
    """The JSON in a body; NotAnUpdate, in plain words, if there is none."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise NotAnUpdate("the body is not UTF-8 text") from exc
    except RecursionError as exc:
        raise NotAnUpdate("the body's JSON is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, or an integer of over 4,300 digits
        raise NotAnUpdate("the body is not valid JSON") from exc


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
        """A PTB `Update` from decoded JSON.

        NotAnUpdate if it is not an object with an integer update_id; UnusableUpdate (with
        the update_id and the field) if it is one the bot can never process.
        """
        if not isinstance(data, dict):
            raise NotAnUpdate("the body is not a Telegram update: expected a JSON object")
        update_id = data.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise NotAnUpdate("update_id is missing or not an integer")
        problem = unusable(data)
        if problem is not None:
            raise UnusableUpdate(update_id, problem)
        try:
            return Update.de_json(data, self.bot)
        except Exception as exc:
            # The fields we read are checked above; PTB parses every other field too and can
            # raise almost anything on an odd one (TypeError, ValueError, OverflowError,
            # RecursionError, ...). Whatever it is, a retry of the same update fails the same.
            raise UnusableUpdate(update_id, f"PTB cannot read it ({type(exc).__name__})") from exc

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
        words = message.text.split(maxsplit=1)  # [] for a text of spaces only (found by fuzz)
        if not words or words[0].split("@", 1)[0].lower() != PUSH_COMMAND:
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
            return plain("the secret token header is missing or wrong", 403)
        try:
            declared_length(request, MAX_BODY_BYTES)
            if media_type(request) != JSON_TYPE:
                return plain(f"Content-Type must be {JSON_TYPE}", 415)
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyRefused as refused:
            return refused.response()
        try:
            update = handler.parse(_decode(body))
        except NotAnUpdate as exc:
            return plain(str(exc), 400)
        except UnusableUpdate as exc:
            # 200, or Telegram retries the same update for a day, and it would fail each time.
            log.warning("telegram: update %s cannot be processed: %s", exc.update_id, exc.reason)
            return Response(status_code=200)
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
    # Cosmetic calls after the 200: a stale or repeated callback query must not fail the
    # update, and the turn is committed, so nothing here may raise (a retry would be a no-op).
    try:
        await call
    except TelegramError as exc:
        log.info("telegram: could not %s the callback query: %s", what, exc)
    except Exception:
        log.exception("telegram: could not %s the callback query", what)


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
