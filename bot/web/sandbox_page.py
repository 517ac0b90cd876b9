"""The /sandbox chat-simulator page: HTML with its chrome translated server-side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from importlib import resources
from string import Template

from bot.i18n import is_rtl, language_name
from bot.web.protocols import TranslationsLike

JOIN_COMMAND = "JOIN DEMO"
# First strong isolate / pop directional isolate: keep a Latin command intact in RTL text.
FSI, PDI = "\u2068", "\u2069"


def _template() -> Template:
    source = resources.files("bot.web").joinpath("templates/sandbox.html")
    return Template(source.read_text(encoding="utf-8"))


def render_sandbox_page(
    *,
    locale: str,
    locales: Sequence[str],
    translations: TranslationsLike,
    messages_url: str,
    css_url: str,
    js_url: str,
) -> str:
    """The page in `locale`, with links to the other shipped locales."""
    t = translations
    title = t.gettext("Learnbot sandbox")
    config = {
        "messagesUrl": messages_url,
        "strings": {
            "sendFailed": t.gettext("The message could not be sent. Please try again."),
            "tooMany": t.gettext("Too many messages. Please wait a moment and try again."),
            "busy": t.gettext("The sandbox is busy. Please try again in a few minutes."),
            "reconnecting": t.gettext("Connection lost. Reconnecting…"),
            "segments": t.gettext("SMS segments: %(count)s"),
            "image": t.gettext("Image"),
            "you": t.gettext("You"),
            "bot": t.gettext("Bot"),
        },
    }
    values = {
        "lang": locale.replace("_", "-"),
        "dir": "rtl" if is_rtl(locale) else "ltr",
        "title": title,
        "intro": t.gettext("Try the bot here. Type %(command)s to start the demo course.")
        % {"command": f"{FSI}{JOIN_COMMAND}{PDI}"},
        "placeholder": t.gettext("Type a message"),
        "send": t.gettext("Send"),
        "show_as": t.gettext("Show as"),
        "conversation": t.gettext("Conversation"),
        "new_conversation": t.gettext("New conversation"),
        "page_language": t.gettext("Page language"),
        "css_url": css_url,
        "js_url": js_url,
    }
    escaped = {name: escape(value, quote=True) for name, value in values.items()}
    escaped["languages"] = _language_links(locale, locales)
    escaped["config"] = _json_for_script(config)
    return _template().substitute(escaped)


def _language_links(current: str, locales: Sequence[str]) -> str:
    links = []
    for locale in locales:
        # Each language is offered in its own name, as a learner would look for it.
        name = escape(language_name(locale))
        lang = escape(locale.replace("_", "-"), quote=True)
        href = escape(f"?lang={locale}", quote=True)
        current_attr = ' aria-current="page"' if locale == current else ""
        links.append(f'<a href="{href}" lang="{lang}" dir="auto"{current_attr}>{name}</a>')
    return " ".join(links)


def _json_for_script(value: object) -> str:
    # Inside <script>, "</script>" or "<!--" in a string would end the block early.
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
