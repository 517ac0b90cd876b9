"""Secrets never reach a log line or an error message: one filter masks every configured one.

httpx logs each request's URL, and a Telegram Bot API URL holds the bot token
(`.../bot<token>/sendMessage`); python-telegram-bot's InvalidToken quotes the token it was
given. The filter sits on the log handlers, so it sees every record of every library, and
masks the formatted message, the exception text and the stack text alike::

    install_secret_filter(settings)               # at start-up, on the root logger's handlers
    install_secret_filter(settings, [caplog.handler])   # in a test
    redactor_for(settings)(str(exc))              # an error message about to be printed
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config import Settings

MASK = "***"
# Shorter values would mask ordinary words; every real secret here is far longer.
MIN_SECRET_LENGTH = 4


class Redactor:
    """Replaces each secret, as written or percent-encoded as in a URL, with `***`."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret is None or len(secret) < MIN_SECRET_LENGTH:
                continue
            forms.update({secret, quote(secret, safe=""), quote(secret, safe="/:@")})
        # Longest first: a secret that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        """`text` with every secret masked."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret a setting holds: tokens, the webhook secret, the key, passwords."""
    values = [
        settings.telegram_bot_token,
        settings.twilio_auth_token,
        settings.telegram_webhook_secret,
        settings.secret_key,
        _database_password(settings.database_url),
        settings.xapi_password,
    ]
    return [value for value in values if value]


def redactor_for(settings: Settings) -> Redactor:
    """The redactor of this configuration's secrets."""
    return Redactor(secrets_of(settings))


def _database_password(url: str) -> str | None:
    try:
        return make_url(url).password
    except ArgumentError:
        return None


class SecretFilter(logging.Filter):
    """Masks secrets in a record's message (args merged in), exception and stack text."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (every later handler sees it masked); always keep it."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it, as usual
            return True
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set: render it here, once, and mask it.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_secret_filter(
    settings: Settings, handlers: Sequence[logging.Handler] | None = None
) -> SecretFilter:
    """Put one SecretFilter on each handler (default: the root logger's), replacing old ones."""
    secret_filter = SecretFilter(redactor_for(settings))
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        for old in [f for f in handler.filters if isinstance(f, SecretFilter)]:
            handler.removeFilter(old)
        handler.addFilter(secret_filter)
    return secret_filter
