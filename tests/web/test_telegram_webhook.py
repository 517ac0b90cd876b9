"""POST /webhooks/telegram with the real Dialogue, the shipped course and the fake Bot API."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.base import Channel
from bot.channels.sandbox import SandboxChannel
from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.delivery import deliver
from bot.dialogue import Dialogue, prompts
from bot.domain import ChannelName, OutboundMessage, Role
from bot.i18n import UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import load_courses
from bot.store.tables import deliveries, events, learners, processed_inbound
from bot.web.app import create_app
from bot.web.telegram import SECRET_HEADER, TelegramStaffCommands, telegram_routes
from tests.fakes.telegram import FakeBotApi, callback_update, text_update

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-token_for_tests"
CHAT = 5550100
TRAINER_CHAT = 7770001


@dataclass
class Telegram:
    """A learner's Telegram app: posts updates to the webhook, reads what the bot sent."""

    http: httpx.AsyncClient
    api: FakeBotApi
    engine: AsyncEngine
    dialogue: Dialogue
    chat_id: int = CHAT

    _ids = itertools.count(1000)

    async def post(self, update: Any, secret: str | None = SECRET) -> httpx.Response:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return await self.http.post("/webhooks/telegram", json=update, headers=headers)

    async def say(self, text: str, chat_id: int | None = None) -> str:
        """Send a text; the texts the bot sent back, joined."""
        return await self._exchange(text_update(next(self._ids), chat_id or self.chat_id, text))

    async def press(self, value: str) -> str:
        """Press the button with this value (`ans:1`) on the newest keyboard that has it."""
        message = self.keyboard_with(value)
        [payload] = [
            key["callback_data"]
            for row in message["reply_markup"]["inline_keyboard"]
            for key in row
            if prompts.parse(key["callback_data"])[1] == value
        ]
        update = callback_update(
            next(self._ids), self.chat_id, payload, message_id=message["message_id"]
        )
        return await self._exchange(update)

    def keyboard_with(self, value: str) -> dict[str, Any]:
        # Buttons name their prompt (`p:<prompt>:ans:1`): found here by their value.
        for message in reversed(self.api.sent_to(self.chat_id)):
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            if any(prompts.parse(key["callback_data"])[1] == value for row in rows for key in row):
                return message
        raise AssertionError(f"no keyboard offers {value!r}")

    async def _exchange(self, update: dict[str, Any]) -> str:
        before = len(self.api.messages)
        response = await self.post(update)
        assert response.status_code == 200
        sent = self.api.messages[before:]
        return "\n".join(m.get("text") or m.get("caption") or "" for m in sent)

    async def count(self, table: Any) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
async def telegram(engine: AsyncEngine) -> AsyncIterator[Telegram]:
    courses = load_courses(ROOT / "lessons")
    content = load_translations(courses.values(), ROOT / "locales")
    ui = UiCatalogs(ROOT / "locales")
    dialogue = Dialogue(engine, courses, content, ui)
    await dialogue.create_cohort(
        name="Demo cohort", join_code="DEMO", course_ids=["digital-skills"]
    )
    api = FakeBotApi()
    async with api.running() as base_url:
        settings = Settings(
            telegram_bot_token=api.token,
            telegram_webhook_secret=SECRET,
            telegram_api_url=base_url,
        )
        channel = TelegramChannel.from_settings(settings)
        channels: dict[ChannelName, Channel] = {
            ChannelName.SANDBOX: SandboxChannel(),
            ChannelName.TELEGRAM: channel,
        }

        async def on_replies(replies: Sequence[OutboundMessage]) -> None:
            await deliver(replies, channels)

        routes = telegram_routes(
            settings=settings,
            dialogue=dialogue,
            application_or_channel=channel,
            on_replies=on_replies,
            staff=TelegramStaffCommands(engine, courses, ui),
        )
        app = create_app(
            dialogue=dialogue, channels=channels, engine=engine, ui=ui, extra_routes=routes
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Telegram(http, api, engine, dialogue)
        await channel.aclose()
        await dialogue.aclose()


async def test_whole_journey_through_the_webhook(telegram: Telegram) -> None:
    welcome = await telegram.say("/start DEMO")  # the deep link t.me/<bot>?start=DEMO
    assert "Welcome to Demo cohort!" in welcome and "Choose your language:" in welcome
    assert "What is your role?" in await telegram.press("lang:en")
    assert "Which country" in await telegram.press("role:technical")
    assert "What is your gender?" in await telegram.say("Kenya")
    lesson = await telegram.say("SKIP")
    assert "Before you start: a quick check" in lesson
    assert "Where should you start?" in lesson

    question = telegram.keyboard_with("ans:1")
    wrong = await telegram.press("ans:2")
    # A pre-assessment item takes one answer and shows no verdict; the next item follows.
    assert "Thank you for your answer." in wrong and "Try again." not in wrong
    assert "personal data" in wrong
    # The pressed keyboard was answered and removed.
    [answer] = telegram.api.calls_to("answerCallbackQuery")[-1:]
    edit = telegram.api.calls_to("editMessageReplyMarkup")[-1]
    assert edit.params["message_id"] == str(question["message_id"])
    assert "reply_markup" not in edit.params and answer.params["callback_query_id"]

    progress = await telegram.say("/progress")
    assert "You have completed 0 of 8 lessons." in progress

    stopped = await telegram.say("/stop")
    assert "You will not receive any more messages" in stopped
    assert await telegram.say("hello?") == ""  # nothing more is sent
    assert await telegram.say("/next") == ""
    assert "Welcome back!" in await telegram.say("/start")

    async with telegram.engine.connect() as conn:
        learner = (await conn.execute(select(learners))).one()
        types = [
            row.type
            for row in await conn.execute(
                select(events.c.type).where(events.c.learner_key == learner.learner_key)
            )
        ]
    assert (learner.channel, learner.address, learner.locale) == ("telegram", str(CHAT), "en")
    assert types.count("stopped") == 1 and types.count("restarted") == 1
    assert types.count("answered") == 1  # one answer to the pre-assessment's first item


async def test_wrong_or_missing_secret_is_refused_and_nothing_is_stored(
    telegram: Telegram,
) -> None:
    update = text_update(1, CHAT, "/start DEMO")
    assert (await telegram.post(update, secret="wrong")).status_code == 403
    assert (await telegram.post(update, secret=None)).status_code == 403
    assert (await telegram.post(update, secret=SECRET[:-1])).status_code == 403
    assert await telegram.count(learners) == 0
    assert await telegram.count(processed_inbound) == 0
    assert telegram.api.calls == []


async def test_malformed_bodies_are_refused_and_nothing_is_stored(telegram: Telegram) -> None:
    headers = {SECRET_HEADER: SECRET, "content-type": "application/json"}
    for body in (b"{not json", b"[1, 2]", b'{"message": {}}', b"\xff\xfe"):
        response = await telegram.http.post("/webhooks/telegram", content=body, headers=headers)
        assert response.status_code == 400, body
    assert await telegram.count(processed_inbound) == 0
    assert telegram.api.calls == []


async def test_a_repeated_update_is_acknowledged_and_changes_nothing(telegram: Telegram) -> None:
    update = text_update(77, CHAT, "/start DEMO")
    assert (await telegram.post(update)).status_code == 200
    sent = len(telegram.api.messages)
    counts = [await telegram.count(t) for t in (learners, events, processed_inbound)]
    assert (await telegram.post(update)).status_code == 200
    assert len(telegram.api.messages) == sent
    assert [await telegram.count(t) for t in (learners, events, processed_inbound)] == counts
    async with telegram.engine.connect() as conn:
        ids = (await conn.execute(select(processed_inbound.c.provider_id))).scalars().all()
    assert ids == ["tg:77"]


async def test_updates_we_do_not_handle_are_acknowledged(telegram: Telegram) -> None:
    edited = {"update_id": 5, "edited_message": text_update(5, CHAT, "x")["message"]}
    sticker = text_update(6, CHAT, "")
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {
        "file_id": "s",
        "file_unique_id": "s",
        "type": "regular",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
    }
    group = text_update(7, -100123, "/start DEMO")
    group["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "Team"}
    for update in (edited, sticker, group):
        assert (await telegram.post(update)).status_code == 200
    assert await telegram.count(processed_inbound) == 0
    assert telegram.api.calls == []


async def test_a_stale_button_is_still_answered(telegram: Telegram) -> None:
    # A button press without data we know (e.g. from an old keyboard) stops its spinner.
    update = callback_update(9, CHAT, "lang:xx", message_id=3)
    assert (await telegram.post(update)).status_code == 200
    assert len(telegram.api.calls_to("answerCallbackQuery")) == 1


async def test_a_trainer_pushes_a_lesson_from_telegram(telegram: Telegram) -> None:
    from bot.trainers.roles import add_user

    await telegram.say("/start DEMO")
    await telegram.press("lang:en")
    async with telegram.engine.begin() as conn:
        await add_user(
            conn,
            name="Tess Trainer",
            email="tess@example.org",
            role=Role.ADMIN,
            telegram_chat_id=str(TRAINER_CHAT),
        )
    reply = await telegram.say("/push DEMO agile-teams", chat_id=TRAINER_CHAT)
    assert (
        reply
        == "Push 1 started: lesson agile-teams to 1 learner of Demo cohort (0 already had it)."
    )
    async with telegram.engine.connect() as conn:
        rows = (await conn.execute(select(deliveries).where(deliveries.c.push_id == 1))).all()
    assert [(r.lesson_id, r.channel, r.status) for r in rows] == [
        ("agile-teams", "telegram", "pending")
    ]
    refused = await telegram.say("/push DEMO no-such-lesson", chat_id=TRAINER_CHAT)
    assert refused.startswith("Push refused:") and "no-such-lesson" in refused
    assert "Usage: /push" in await telegram.say("/push DEMO", chat_id=TRAINER_CHAT)


async def staff_say(telegram: Telegram, text: str, language_code: str | None) -> str:
    """A staff member's message, from a Telegram app set to `language_code`."""
    update = text_update(next(telegram._ids), TRAINER_CHAT, text)
    if language_code is not None:
        update["message"]["from"]["language_code"] = language_code
    return await telegram._exchange(update)


async def test_push_replies_speak_the_trainers_telegram_language(telegram: Telegram) -> None:
    from bot.trainers.roles import add_user

    await telegram.say("/start DEMO")
    await telegram.press("lang:en")
    async with telegram.engine.begin() as conn:
        await add_user(
            conn,
            name="Fatou Formatrice",
            email="fatou@example.org",
            role=Role.ADMIN,
            telegram_chat_id=str(TRAINER_CHAT),
        )
    started = await staff_say(telegram, "/push DEMO agile-teams", "fr")
    assert started == (
        "Envoi 1 lancé : leçon agile-teams à 1 apprenant du groupe Demo cohort (0 l'avaient déjà)."
    )
    assert await staff_say(telegram, "/push DEMO", "fr-CA") == (
        "Utilisation : /push COHORT LESSON (un numéro ou un code de groupe, et un identifiant de "
        "leçon)"
    )
    assert await staff_say(telegram, "/push NOPE42 agile-teams", "pt-BR") == (
        "Envio recusado: nenhuma turma tem o número ou o código NOPE42."
    )
    assert await staff_say(telegram, "/push DEMO no-such-lesson", "sw") == (
        "Utumaji umekataliwa: hakuna kozi ya kundi Demo cohort yenye somo no-such-lesson."
    )
    # Arabic: the Latin names and numbers are isolated so the line reads right to left.
    arabic = await staff_say(telegram, "/push DEMO agile-teams", "ar")
    assert arabic.startswith("بدأ الإرسال \u20682\u2069: الدرس \u2068agile-teams\u2069 إلى")
    assert "\u2068Demo cohort\u2069" in arabic
    # A language we do not ship, or none at all: the source locale.
    assert (await staff_say(telegram, "/push DEMO", "de")).startswith("Usage: /push")
    assert (await staff_say(telegram, "/push DEMO", None)).startswith("Usage: /push")


async def test_a_trainer_is_refused_another_trainers_cohort_in_their_language(
    telegram: Telegram,
) -> None:
    from bot.trainers.roles import add_user

    async with telegram.engine.begin() as conn:
        await add_user(
            conn,
            name="Tomás Trainer",
            email="tomas@example.org",
            role=Role.TRAINER,
            telegram_chat_id=str(TRAINER_CHAT),
        )
    refused = await staff_say(telegram, "/push DEMO agile-teams", "es")
    assert refused == (
        "Envío rechazado: el grupo Demo cohort pertenece a otro formador "
        "(consulte a un administrador)."
    )
    async with telegram.engine.connect() as conn:
        assert (await conn.execute(select(deliveries.c.push_id))).scalars().all() == []


async def test_a_learner_typing_push_is_just_a_learner(telegram: Telegram) -> None:
    await telegram.say("/start DEMO")
    reply = await telegram.say("/push DEMO agile-teams")
    assert "Push" not in reply
    async with telegram.engine.connect() as conn:
        assert (await conn.execute(select(deliveries.c.push_id))).scalars().all() == []
