"""GET /sandbox: the chat simulator page, its chrome translated, its assets served."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.i18n import UiCatalogs
from bot.web.app import create_app
from tests.web.conftest import FakeDialogue


async def test_page_defaults_to_the_source_locale(client: httpx.AsyncClient) -> None:
    response = await client.get("/sandbox")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="en" dir="ltr">' in html
    assert ">Send</button>" in html
    assert 'placeholder="Type a message"' in html
    assert "Type \u2068JOIN DEMO\u2069 to start the demo course." in html


async def test_lang_parameter_picks_french(client: httpx.AsyncClient) -> None:
    response = await client.get("/sandbox", params={"lang": "fr"})

    html = response.text
    assert '<html lang="fr" dir="ltr">' in html
    assert ">Envoyer</button>" in html
    assert 'placeholder="Écrivez un message"' in html
    assert "Tapez \u2068JOIN DEMO\u2069 pour commencer" in html
    assert response.headers["content-language"] == "fr"


async def test_accept_language_picks_arabic_right_to_left(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/sandbox", headers={"Accept-Language": "de-DE;q=0.9, ar-EG, en;q=0.5"}
    )

    html = response.text
    assert '<html lang="ar" dir="rtl">' in html
    assert ">إرسال</button>" in html
    assert "اكتب \u2068JOIN DEMO\u2069 لبدء" in html


async def test_lang_parameter_wins_over_accept_language(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/sandbox", params={"lang": "fr-CA"}, headers={"Accept-Language": "ar"}
    )

    assert '<html lang="fr" dir="ltr">' in response.text


async def test_unshipped_language_falls_back_to_the_source(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/sandbox", params={"lang": "zz"}, headers={"Accept-Language": "de"}
    )

    assert '<html lang="en" dir="ltr">' in response.text


async def test_every_shipped_language_is_offered_in_its_own_name(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/sandbox", params={"lang": "ar"})).text

    links = re.findall(r'<a href="\?lang=(\w+)" lang="[\w-]+" dir="auto"[^>]*>([^<]+)</a>', html)
    assert links == [("ar", "العربية"), ("en", "English"), ("fr", "Français")]


async def test_page_and_assets_are_self_contained(client: httpx.AsyncClient) -> None:
    response = await client.get("/sandbox")
    html = response.text
    script = re.search(r'<script src="([^"]+)"', html)
    style = re.search(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert script and style

    js = await client.get(script.group(1))
    css = await client.get(style.group(1))

    assert js.status_code == 200 and "localStorage" in js.text
    assert css.status_code == 200 and ".bubble" in css.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert not re.search(r"""(src|href)=["']https?://""", html)  # no CDN


async def test_page_config_names_the_messages_endpoint(client: httpx.AsyncClient) -> None:
    html = (await client.get("/sandbox")).text

    assert '"messagesUrl": "/sandbox/messages"' in html


async def test_sandbox_can_be_switched_off(
    dialogue: FakeDialogue, sqlite_engine: AsyncEngine, ui: UiCatalogs
) -> None:
    app = create_app(
        dialogue=dialogue, channels={}, engine=sqlite_engine, ui=ui, sandbox_enabled=False
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/sandbox")).status_code == 404
        assert (await http.get("/healthz")).status_code == 200


def test_sandbox_needs_a_sandbox_channel(
    dialogue: FakeDialogue, sqlite_engine: AsyncEngine, ui: UiCatalogs
) -> None:
    with pytest.raises(ValueError, match=r"needs a SandboxChannel under ChannelName\.SANDBOX"):
        create_app(
            dialogue=dialogue, channels={}, engine=sqlite_engine, ui=ui, sandbox_enabled=True
        )
