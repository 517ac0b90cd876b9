"""The /sandbox page in a real browser: type, get a reply, press a button, preview SMS.

Needs Debian's chromium (`apt-get install chromium`) and the `playwright` package; skipped
with the reason when either is missing. The browser only talks to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.base import Channel
from bot.channels.sandbox import SandboxChannel
from bot.domain import Button, ChannelName, InboundMessage, OutboundMessage
from bot.i18n import UiCatalogs
from bot.web.app import create_app
from tests.web.conftest import FakeDialogue

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install playwright)"
)
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


def welcome(message: InboundMessage) -> list[OutboundMessage]:
    """Join, then a button press: enough to see both kinds of learner input."""
    buttons: tuple[Button, ...] = ()
    if message.payload == "ready:yes":
        text = "Great, here is lesson 1."
    elif message.text.upper() == "LESSON":
        text = "Know your users\n\nStart with the people."
        meta = {"lesson": "users", "part": "lesson", "title": "Know your users"}
        return [OutboundMessage(message.channel, message.address, text, "en", meta=meta)]
    elif message.text.upper() == "JOIN DEMO":
        text, buttons = "Welcome! Ready?", (Button("Yes", "ready:yes"), Button("Later", "ready:no"))
    else:
        text = "Type JOIN DEMO to start."
    return [OutboundMessage(message.channel, message.address, text, "en", buttons=buttons)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def server_url(
    dialogue: FakeDialogue, sqlite_engine: AsyncEngine, ui: UiCatalogs
) -> AsyncIterator[str]:
    """The app served by uvicorn on a free loopback port, in this event loop."""
    dialogue.reply = welcome
    channels: dict[ChannelName, Channel] = {ChannelName.SANDBOX: SandboxChannel()}
    app = create_app(
        dialogue=dialogue, channels=channels, engine=sqlite_engine, ui=ui, sandbox_enabled=True
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why the server could not start
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True  # the page's long-poll would otherwise hold shutdown 25 s
        await task


async def test_chat_in_the_browser(server_url: str) -> None:
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await run_conversation(page, server_url)
        finally:
            await browser.close()


async def run_conversation(page: Any, base: str) -> None:
    expect = playwright_api.expect
    await page.goto(f"{base}/sandbox?lang=fr")
    await expect(page.locator("#intro")).to_contain_text("JOIN DEMO")
    await expect(page.locator("#send")).to_have_text("Envoyer")

    await page.fill("#text", "JOIN DEMO")
    await page.press("#text", "Enter")
    log = page.locator("#log")
    await expect(log.locator("li.bubble.mine")).to_have_text(["JOIN DEMO"])
    await expect(log.locator("li.bubble:not(.mine) .text")).to_have_text(["Welcome! Ready?"])

    await log.get_by_role("button", name="Yes").click()
    await expect(log.locator("li.bubble.mine")).to_have_text(["JOIN DEMO", "Yes"])
    await expect(log.locator("li.bubble:not(.mine) .text").last).to_have_text(
        "Great, here is lesson 1."
    )

    # The same conversation as an SMS learner would see it: numbered lines, no buttons.
    await page.select_option("#channel", "sms")
    first_reply = log.locator("li.bubble:not(.mine)").first
    await expect(first_reply).to_contain_text("1) Yes")
    await expect(first_reply).to_contain_text("GSM-7")
    await expect(log.get_by_role("button")).to_have_count(0)

    # The address lives in localStorage: a reload shows the same conversation.
    await page.reload()
    await expect(log.locator("li.bubble")).to_have_count(4)


async def test_the_intro_gives_its_room_to_the_messages_after_joining_on_a_phone(
    server_url: str,
) -> None:
    # Today the yellow intro stayed after joining and took 15% of a 375 px phone's height.
    expect = playwright_api.expect
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 375, "height": 667})
            await page.goto(f"{server_url}/sandbox")
            intro, log = page.locator("#intro"), page.locator("#log")
            await expect(intro).to_be_visible()
            before, banner = await log.bounding_box(), await intro.bounding_box()

            await page.fill("#text", "JOIN DEMO")
            await page.press("#text", "Enter")
            await expect(log.locator("li.bubble:not(.mine) .text")).to_have_text(
                ["Welcome! Ready?"]
            )
            await expect(intro).to_be_hidden()
            assert await intro.bounding_box() is None
            after = await log.bounding_box()
            assert before is not None and after is not None and banner is not None
            # The transcript now starts right under the header and has gained the intro's room.
            header = await page.locator("header.bar").bounding_box()
            assert header is not None
            assert after["y"] <= header["y"] + header["height"] + 1
            assert after["height"] >= before["height"] + banner["height"]
            first = await log.locator("li.bubble").first.bounding_box()
            assert first is not None and first["y"] >= after["y"]

            # Across a reload the conversation is still there, and so the intro stays away;
            # a new conversation brings it back.
            await page.reload()
            await expect(log.locator("li.bubble")).to_have_count(2)
            await expect(intro).to_be_hidden()
            await page.click("#reset")
            await expect(intro).to_be_visible()

            # A lesson's title is bold, as Telegram shows it; the rest of the text is not.
            await page.fill("#text", "LESSON")
            await page.press("#text", "Enter")
            reply = log.locator("li.bubble:not(.mine) .text")
            await expect(reply.locator("strong")).to_have_text("Know your users")
            await expect(reply).to_have_text("Know your users\n\nStart with the people.")
        finally:
            await browser.close()
