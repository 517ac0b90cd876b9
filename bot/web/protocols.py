"""What the web app needs from the dialogue and the UI catalogs, as structural types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.domain import InboundMessage, OutboundMessage


class DialogueLike(Protocol):
    """Turns one learner message into the replies to send (bot.dialogue.Dialogue)."""

    async def handle(self, message: InboundMessage) -> list[OutboundMessage]:
        """Handle one inbound message and return the replies, in order."""
        ...


class TranslationsLike(Protocol):
    """One locale's UI catalog (e.g. babel.support.Translations)."""

    def gettext(self, message: str) -> str:
        """Translate one UI string."""
        ...


class UiCatalogsLike(Protocol):
    """The shipped UI catalogs, domain `messages` (bot.i18n.UiCatalogs)."""

    @property
    def source(self) -> str:
        """The locale the UI strings are written in."""
        ...

    @property
    def default(self) -> str | None:
        """The locale to use when a request asks for none that is shipped, if not `source`."""
        ...

    def available_locales(self) -> Sequence[str]:
        """Shipped UI locales."""
        ...

    def translations(self, locale: str) -> TranslationsLike:
        """The catalog for `locale`, with its fallback chain applied."""
        ...
