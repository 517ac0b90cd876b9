"""`learnbot telegram set-webhook / set-commands` and the long-polling runner, on the fake API."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from telegram import Bot

from bot.cli import main
from bot.domain import InboundMessage, OutboundMessage
from bot.i18n import SHIPPED_LOCALES, UiCatalogs
from bot.store.availability import StoreUnavailable
from bot.telegram_cli import bot_commands, run_polling, set_commands
from bot.web.telegram import TelegramUpdateHandler
from tests.fakes.telegram import FakeBotApi, callback_update, text_update

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-token_for_tests"


def env(base_url: str, fake: FakeBotApi, **extra: str) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_URL": base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "LEARNBOT_PUBLIC_URL": "https://learn.example.org",
        **extra,
    }


def test_set_webhook_registers_the_public_url_with_the_secret(tmp_path: Path) -> None:
    fake = FakeBotApi()
    with fake.running_in_thread() as base_url:
        result = CliRunner().invoke(
            main, ["telegram", "set-webhook", "--drop-pending-updates"], env=env(base_url, fake)
        )
    assert result.exit_code == 0, result.output
    assert "https://learn.example.org/webhooks/telegram" in result.output
    [call] = fake.calls_to("setWebhook")
    assert call.params["url"] == "https://learn.example.org/webhooks/telegram"
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    assert call.params["drop_pending_updates"] == "true"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"TELEGRAM_WEBHOOK_SECRET": ""}, "TELEGRAM_WEBHOOK_SECRET is not set"),
        ({"LEARNBOT_PUBLIC_URL": "http://learn.example.org"}, "only posts to https://"),
    ],
)
def test_set_webhook_refuses_an_open_or_plain_http_webhook(
    extra: dict[str, str], error: str
) -> None:
    fake = FakeBotApi()
    with fake.running_in_thread() as base_url:
        result = CliRunner().invoke(
            main, ["telegram", "set-webhook"], env=env(base_url, fake, **extra)
        )
    assert result.exit_code != 0 and error in result.output
    assert fake.calls == []


@pytest.mark.parametrize(
    ("status", "description", "error"),
    [
        (401, "Unauthorized", "Error: TELEGRAM_BOT_TOKEN: Telegram rejected the token"),
        # An answer that quotes the request back: the token is masked, the rest is kept.
        (400, "Bad Request: bot {token} may not do that", "Error: Telegram refused: "),
    ],
)
def test_set_webhook_errors_never_print_the_token(
    status: int, description: str, error: str
) -> None:
    fake = FakeBotApi()
    fake.fail_next("setWebhook", status, description.format(token=fake.token))
    with fake.running_in_thread() as base_url:
        result = CliRunner().invoke(main, ["telegram", "set-webhook"], env=env(base_url, fake))
    assert result.exit_code == 1
    assert result.output.startswith(error)
    assert len(result.output.splitlines()) == 1
    assert fake.token not in result.output
    assert fake.token.split(":")[1] not in result.output


def test_commands_need_a_token() -> None:
    result = CliRunner().invoke(main, ["telegram", "set-commands"], env={"TELEGRAM_BOT_TOKEN": ""})
    assert result.exit_code != 0 and "TELEGRAM_BOT_TOKEN is not set" in result.output


def test_command_menu_is_translated() -> None:
    ui = UiCatalogs(ROOT / "locales")
    english = {c.command: c.description for c in bot_commands(ui.translations("en"))}
    assert english == {
        "next": "The next lesson",
        "progress": "Your progress and quiz score",
        "language": "Choose your language",
        "zone": "Set your time zone",
        "help": "You can send: /next /progress /language /zone /stop",
        "stop": "Stop all messages",
    }
    french = {c.command: c.description for c in bot_commands(ui.translations("fr"))}
    assert french["next"] == "La leçon suivante"
    for locale in SHIPPED_LOCALES:
        for command in bot_commands(ui.translations(locale)):
            assert 1 <= len(command.description) <= 256
            assert "%" not in command.description and "\x00" not in command.description


async def test_set_commands_in_every_shipped_locale_and_a_default() -> None:
    fake = FakeBotApi()
    async with fake.running() as base_url, Bot(fake.token, base_url=base_url) as bot:
        await set_commands(bot, UiCatalogs(ROOT / "locales"), "en")
    calls = fake.calls_to("setMyCommands")
    codes = [call.params.get("language_code") for call in calls]
    assert codes == [*(loc for loc in SHIPPED_LOCALES if loc != "en"), None]
    assert [c["command"] for c in calls[-1].params["commands"]] == [
        "next",
        "progress",
        "language",
        "zone",
        "help",
        "stop",
    ]


class RecordingDialogue:
    def __init__(self) -> None:
        self.received: list[InboundMessage] = []

    async def handle(self, message: InboundMessage) -> list[OutboundMessage]:
        self.received.append(message)
        return []


async def test_polling_feeds_updates_in_order_and_confirms_them() -> None:
    fake = FakeBotApi()
    dialogue = RecordingDialogue()
    delivered: list[Sequence[OutboundMessage]] = []

    async def on_replies(replies: Sequence[OutboundMessage]) -> None:
        delivered.append(replies)

    fake.push_update(text_update(10, 42, "/start DEMO"))
    fake.push_update(callback_update(11, 42, "lang:fr", message_id=1))
    async with fake.running() as base_url, Bot(fake.token, base_url=base_url) as bot:
        handler = TelegramUpdateHandler(bot=bot, dialogue=dialogue, on_replies=on_replies)
        stop = asyncio.Event()
        task = asyncio.create_task(run_polling(bot, handler, stop=stop, poll_seconds=1))
        for _ in range(200):
            if len(dialogue.received) == 2 and len(fake.calls_to("getUpdates")) >= 2:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert [(m.text, m.payload, m.provider_id) for m in dialogue.received] == [
        ("/start DEMO", None, "tg:10"),
        ("", "lang:fr", "tg:11"),
    ]
    methods = [call.method for call in fake.calls if call.method != "getMe"]
    assert methods[0] == "deleteWebhook"  # getUpdates is refused while a webhook is set
    polls = fake.calls_to("getUpdates")
    assert polls[1].params["offset"] == "12"  # both updates confirmed
    assert len(fake.calls_to("answerCallbackQuery")) == 1


async def test_polling_backs_off_when_telegram_fails() -> None:
    fake = FakeBotApi()
    fake.fail_next("getUpdates", 409, "Conflict: terminated by other getUpdates request")
    async with fake.running() as base_url, Bot(fake.token, base_url=base_url) as bot:
        handler = TelegramUpdateHandler(bot=bot, dialogue=RecordingDialogue(), on_replies=_ignore)
        stop = asyncio.Event()
        task = asyncio.create_task(run_polling(bot, handler, stop=stop, poll_seconds=1))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(task, 5)
    # The refusal was followed by a wait (1 s backoff), not by a tight loop of retries.
    assert len(fake.calls_to("getUpdates")) == 1


async def _ignore(replies: Sequence[OutboundMessage]) -> None:
    return None


class RefusingDialogue(RecordingDialogue):
    """A dialogue whose store refuses the first `refusals` turns (disk full)."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    async def handle(self, message: InboundMessage) -> list[OutboundMessage]:
        if self.refusals:
            self.refusals -= 1
            raise StoreUnavailable("disk full")
        return await super().handle(message)


async def test_polling_keeps_an_update_the_store_refused_until_it_is_stored() -> None:
    fake = FakeBotApi()
    dialogue = RefusingDialogue(refusals=2)
    fake.push_update(text_update(20, 42, "/start DEMO"))
    async with fake.running() as base_url, Bot(fake.token, base_url=base_url) as bot:
        handler = TelegramUpdateHandler(bot=bot, dialogue=dialogue, on_replies=_ignore)
        stop = asyncio.Event()
        task = asyncio.create_task(run_polling(bot, handler, stop=stop, poll_seconds=1))
        for _ in range(300):  # refused, 1 s, refused, 2 s, stored
            if dialogue.received and len(fake.calls_to("getUpdates")) >= 2:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert [m.provider_id for m in dialogue.received] == ["tg:20"]
    polls = fake.calls_to("getUpdates")
    # Not confirmed while refused: the second poll came only after the update was stored.
    assert polls[1].params["offset"] == "21"
