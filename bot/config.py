"""Settings from the environment and `.env`, validated once into one frozen object."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel import Locale, UnknownLocaleError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.i18n import SHIPPED_LOCALES, parse_locale
from bot.lessons.sms import DEFAULT_SMS_FOLD


class ConfigError(ValueError):
    """A setting has a wrong value; the message names the setting."""


DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/learnbot.db"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
TELEGRAM_API_URL = "https://api.telegram.org/bot"
# Settings are read with ASCII digits only: str.isdigit() and int() also take "²" or "٣".
_ASCII_INT = re.compile(r"[0-9]+", re.ASCII)
# Far above any sender's real throughput (a Twilio short code: 100 MPS; WhatsApp: 80 by
# default, a few hundred at most), yet small enough that 1/rate and timers stay finite.
MAX_RATE = 10_000.0
MIN_RATE = 0.001  # one message in about 17 minutes
MAX_SMS_SEGMENTS = 255  # a concatenated SMS counts its parts in one byte
MAX_DURATION = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of learnbot; see the README's configuration table."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    secret_key: str = DEV_SECRET_KEY
    lessons_dir: Path = Path("lessons")
    locales_dir: Path = Path("locales")
    default_locale: str = "en"
    # The trainer commands' language; None: from LANG and friends, as gettext does.
    cli_locale: str | None = None
    demo: bool = False
    # The public /sandbox chat simulator; on with `demo` too (see `sandbox_enabled`).
    sandbox: bool = False
    # Channels (the channels issue). A channel is on when its credentials are set.
    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_url: str = TELEGRAM_API_URL
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_sms_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_url: str | None = None  # None: Twilio's own
    # Twilio's connection overrides ("rc=5&rp=5xx,ct,rt&tt=15000") as set after "#" on the
    # webhook URLs in Twilio's console: also tried when checking signatures.
    twilio_webhook_overrides: str = ""
    twilio_sms_mps: float = 1.0  # messages (segments) per second per sender
    twilio_whatsapp_mps: float = 80.0
    # locale -> approved WhatsApp content template SID ("your lesson is ready, reply 1")
    twilio_whatsapp_templates: Mapping[str, str] = field(default_factory=dict)
    sms_max_segments: int = 3
    sms_fold: frozenset[str] = DEFAULT_SMS_FOLD  # locales whose SMS text is folded to GSM-7
    # Estimated price of one SMS segment per country (ISO 3166 alpha-2), for the console.
    sms_prices: Mapping[str, float] = field(default_factory=dict)
    # Scheduling (the scheduling issue).
    misfire_grace: timedelta = timedelta(hours=6)
    # xAPI (the analytics issue): forwarding to a Learning Record Store is off while unset.
    xapi_endpoint: str | None = None  # the LRS's xAPI base, e.g. https://lrs.example/xAPI
    xapi_username: str | None = None
    xapi_password: str | None = None
    xapi_batch: int = 100

    @property
    def xapi_enabled(self) -> bool:
        """Whether events are forwarded to an LRS."""
        return self.xapi_endpoint is not None

    @property
    def sandbox_enabled(self) -> bool:
        """Whether /sandbox is served: LEARNBOT_SANDBOX=1 or LEARNBOT_DEMO=1."""
        return self.sandbox or self.demo

    @property
    def telegram_enabled(self) -> bool:
        """Whether a Telegram bot token is configured."""
        return self.telegram_bot_token is not None

    @property
    def twilio_enabled(self) -> bool:
        """Whether Twilio credentials are configured."""
        return self.twilio_account_sid is not None and self.twilio_auth_token is not None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
    ) -> Settings:
        """Read `LEARNBOT_*` from `.env` then the environment (which wins), and validate."""
        values: dict[str, str] = {}
        if env_file is not None and env_file.is_file():
            values.update(_read_env_file(env_file))
        values.update(os.environ if environ is None else environ)
        get = values.get
        return cls(
            database_url=_database_url(get("LEARNBOT_DATABASE_URL", DEFAULT_DATABASE_URL)),
            host=get("LEARNBOT_HOST", "127.0.0.1"),
            port=_port(get("LEARNBOT_PORT", "8080")),
            public_url=_http_url("LEARNBOT_PUBLIC_URL", get("LEARNBOT_PUBLIC_URL", ""))
            or f"http://{get('LEARNBOT_HOST', '127.0.0.1')}:{get('LEARNBOT_PORT', '8080')}",
            secret_key=_secret(get("LEARNBOT_SECRET_KEY", DEV_SECRET_KEY)),
            lessons_dir=_directory("LEARNBOT_LESSONS_DIR", get("LEARNBOT_LESSONS_DIR", "lessons")),
            locales_dir=_directory("LEARNBOT_LOCALES_DIR", get("LEARNBOT_LOCALES_DIR", "locales")),
            default_locale=_locale(get("LEARNBOT_DEFAULT_LOCALE", "en")),
            cli_locale=_cli_locale(get("LEARNBOT_CLI_LOCALE", "")),
            demo=_flag("LEARNBOT_DEMO", get("LEARNBOT_DEMO", "0")),
            sandbox=_flag("LEARNBOT_SANDBOX", get("LEARNBOT_SANDBOX", "0")),
            telegram_bot_token=_optional(get("TELEGRAM_BOT_TOKEN")),
            telegram_webhook_secret=_webhook_secret(get("TELEGRAM_WEBHOOK_SECRET")),
            telegram_api_url=_http_url("TELEGRAM_API_URL", get("TELEGRAM_API_URL", ""))
            or TELEGRAM_API_URL,
            twilio_account_sid=_optional(get("TWILIO_ACCOUNT_SID")),
            twilio_auth_token=_optional(get("TWILIO_AUTH_TOKEN")),
            twilio_sms_from=_optional(get("TWILIO_SMS_FROM")),
            twilio_messaging_service_sid=_optional(get("TWILIO_MESSAGING_SERVICE_SID")),
            twilio_whatsapp_from=_whatsapp_from(get("TWILIO_WHATSAPP_FROM")),
            twilio_api_url=_http_url("TWILIO_API_URL", get("TWILIO_API_URL", "")) or None,
            twilio_webhook_overrides=_webhook_overrides(get("TWILIO_WEBHOOK_OVERRIDES", "")),
            twilio_sms_mps=_rate("TWILIO_SMS_MPS", get("TWILIO_SMS_MPS", "1")),
            twilio_whatsapp_mps=_rate("TWILIO_WHATSAPP_MPS", get("TWILIO_WHATSAPP_MPS", "80")),
            twilio_whatsapp_templates=_templates(get("TWILIO_WHATSAPP_TEMPLATES", "")),
            sms_max_segments=_positive_int(
                "LEARNBOT_SMS_MAX_SEGMENTS", get("LEARNBOT_SMS_MAX_SEGMENTS", "3")
            ),
            sms_fold=_sms_fold(get("LEARNBOT_SMS_FOLD", ",".join(sorted(DEFAULT_SMS_FOLD)))),
            sms_prices=_sms_prices(get("LEARNBOT_SMS_PRICES", "")),
            misfire_grace=_duration("LEARNBOT_MISFIRE_GRACE", get("LEARNBOT_MISFIRE_GRACE", "6h")),
            **_xapi(get),
        )


def check_secret_key_for_serving(settings: Settings) -> None:
    """ConfigError naming LEARNBOT_SECRET_KEY when a real server would run on the dev key."""
    # Anyone who read the source knows that key, and with it every export's pseudonyms.
    if settings.secret_key == DEV_SECRET_KEY and not settings.demo:
        raise ConfigError(
            "LEARNBOT_SECRET_KEY: still the development key; set a long random value "
            "(e.g. `openssl rand -hex 32`), or LEARNBOT_DEMO=1 for a demo"
        )


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"{path}:{number}: expected NAME=value, got {raw!r}")
        name, _, value = line.partition("=")
        values[name.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def _database_url(value: str) -> str:
    try:
        url = make_url(value)
    except ArgumentError as exc:
        raise ConfigError(f"LEARNBOT_DATABASE_URL: not a database URL: {value!r}") from exc
    if url.drivername not in SUPPORTED_DRIVERS:
        raise ConfigError(
            f"LEARNBOT_DATABASE_URL: driver {url.drivername!r} is not supported; "
            f"use one of {', '.join(SUPPORTED_DRIVERS)}"
        )
    return value


def _port(value: str) -> int:
    if not _ASCII_INT.fullmatch(value.strip()) or not 0 < int(value) < 65536:
        raise ConfigError(f"LEARNBOT_PORT: expected a port number 1-65535, got {value!r}")
    return int(value)


def _http_url(name: str, value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name}: expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _secret(value: str) -> str:
    if len(value) < 16:
        raise ConfigError("LEARNBOT_SECRET_KEY: must be at least 16 characters long")
    return value


def _directory(name: str, value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise ConfigError(f"{name}: directory {value!r} does not exist")
    return path


def _locale(value: str) -> str:
    locale = _locale_of("LEARNBOT_DEFAULT_LOCALE", value)
    # The UI a learner reads before choosing a language: it must be one we translate.
    if locale not in SHIPPED_LOCALES:
        raise ConfigError(
            f"LEARNBOT_DEFAULT_LOCALE: {value!r} is not a shipped locale; "
            f"use one of {', '.join(SHIPPED_LOCALES)}"
        )
    return locale


def _cli_locale(value: str) -> str | None:
    # "pt-BR" is written as often as "pt_BR": accept both, like the learners' locales.
    if not value.strip():
        return None
    try:
        return parse_locale(value)
    except ValueError as exc:
        raise ConfigError(f"LEARNBOT_CLI_LOCALE: unknown locale {value!r}") from exc


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected 0/1 or true/false, got {value!r}")


# Twilio's connection override parameters: timeouts, retry count and policy, edge, SNI.
_OVERRIDE_KEYS = frozenset({"ct", "rt", "tt", "rc", "rp", "e", "edge", "sni"})
_OVERRIDE = re.compile(r"[a-z]+=[A-Za-z0-9,._-]+", re.ASCII)


def _webhook_overrides(value: str) -> str:
    overrides = value.strip().removeprefix("#")
    if not overrides:
        return ""
    for pair in overrides.split("&"):
        if not _OVERRIDE.fullmatch(pair) or pair.split("=", 1)[0] not in _OVERRIDE_KEYS:
            raise ConfigError(
                f"TWILIO_WEBHOOK_OVERRIDES: {pair!r} is not one of Twilio's connection overrides"
                " (e.g. rc=5&rp=5xx,ct,rt&tt=15000)"
            )
    return overrides


def _optional(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _webhook_secret(value: str | None) -> str | None:
    secret = _optional(value)
    # Telegram's own rule for secret_token: 1-256 characters of A-Z a-z 0-9 _ -.
    if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET: use 1-256 characters from A-Z, a-z, 0-9, _ and -"
        )
    return secret


def _whatsapp_from(value: str | None) -> str | None:
    sender = _optional(value)
    if sender is not None and not re.fullmatch(r"whatsapp:\+[1-9]\d{6,14}", sender):
        raise ConfigError(
            f"TWILIO_WHATSAPP_FROM: expected whatsapp:+<E.164 number>, got {sender!r}"
        )
    return sender


_DECIMAL = re.compile(r"\s*[0-9]+(?:\.[0-9]*)?\s*|\s*\.[0-9]+\s*", re.ASCII)


def _rate(name: str, value: str) -> float:
    # A plain decimal only: float() also reads "inf", "nan", "1e999" and Unicode digits.
    rate = float(value) if _DECIMAL.fullmatch(value) else 0.0
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ConfigError(
            f"{name}: expected messages per second between {MIN_RATE:g} and {MAX_RATE:g}, "
            f"got {value!r}"
        )
    return rate


def _positive_int(name: str, value: str) -> int:
    if not _ASCII_INT.fullmatch(value.strip()) or not 1 <= int(value) <= MAX_SMS_SEGMENTS:
        raise ConfigError(
            f"{name}: expected a whole number from 1 to {MAX_SMS_SEGMENTS}, got {value!r}"
        )
    return int(value)


_DURATION = re.compile(r"^\s*([0-9]{1,12}(?:\.[0-9]{1,6})?)\s*([smhd])\s*$", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(name: str, value: str) -> timedelta:
    match = _DURATION.match(value)
    if match is None:
        raise ConfigError(f"{name}: expected a duration such as 90s, 30m, 6h or 2d, got {value!r}")
    try:
        duration = timedelta(**{_UNITS[match[2]]: float(match[1])})
    except OverflowError:  # beyond 999999999 days
        duration = timedelta.max
    if duration > MAX_DURATION:
        raise ConfigError(f"{name}: at most {MAX_DURATION.days}d, got {value!r}")
    return duration


MAX_XAPI_BATCH = 1000  # LRSs cap a POST's size; a thousand statements is ~2 MB


def _xapi(get: Callable[[str], str | None]) -> dict[str, Any]:
    endpoint = _http_url("LEARNBOT_XAPI_ENDPOINT", (get("LEARNBOT_XAPI_ENDPOINT") or "").strip())
    username = _optional(get("LEARNBOT_XAPI_USERNAME"))
    password = _optional(get("LEARNBOT_XAPI_PASSWORD"))
    if endpoint and urlsplit(endpoint).username is not None:
        # Credentials in a URL end up in logs; they have settings of their own.
        raise ConfigError(
            "LEARNBOT_XAPI_ENDPOINT: put the credentials in LEARNBOT_XAPI_USERNAME and "
            "LEARNBOT_XAPI_PASSWORD, not in the URL"
        )
    if endpoint and (username is None or password is None):
        missing = "LEARNBOT_XAPI_USERNAME" if username is None else "LEARNBOT_XAPI_PASSWORD"
        raise ConfigError(f"{missing}: required with LEARNBOT_XAPI_ENDPOINT (HTTP Basic)")
    batch = (get("LEARNBOT_XAPI_BATCH") or "100").strip()
    if not _ASCII_INT.fullmatch(batch) or not 1 <= int(batch) <= MAX_XAPI_BATCH:
        raise ConfigError(
            f"LEARNBOT_XAPI_BATCH: expected a whole number from 1 to {MAX_XAPI_BATCH}, "
            f"got {batch!r}"
        )
    return {
        "xapi_endpoint": endpoint or None,
        "xapi_username": username,
        "xapi_password": password,
        "xapi_batch": int(batch),
    }


def _templates(value: str) -> dict[str, str]:
    templates: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        locale, sep, sid = item.partition(":")
        if not sep or not re.fullmatch(r"HX[0-9a-fA-F]{32}", sid.strip()):
            raise ConfigError(
                f"TWILIO_WHATSAPP_TEMPLATES: expected locale:HX<32 hex> pairs, got {item!r}"
            )
        templates[_locale_of("TWILIO_WHATSAPP_TEMPLATES", locale.strip())] = sid.strip()
    return templates


def _sms_fold(value: str) -> frozenset[str]:
    # "none" (or nothing) folds no locale: every SMS keeps its accents, at UCS-2's price.
    items = [item.strip() for item in value.split(",") if item.strip()]
    if items == ["none"]:
        return frozenset()
    return frozenset(_locale_of("LEARNBOT_SMS_FOLD", item.replace("-", "_")) for item in items)


def _sms_prices(value: str) -> dict[str, float]:
    # "KE=0.0079,SN=0.031": a price per segment, in whatever currency the operator bills in.
    prices: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        country, sep, price = (part.strip() for part in item.partition("="))
        try:
            amount = float(price) if sep else -1.0
        except ValueError:
            amount = -1.0
        if not re.fullmatch(r"[A-Za-z]{2}", country) or not 0 <= amount < math.inf:
            raise ConfigError(
                f"LEARNBOT_SMS_PRICES: expected COUNTRY=price pairs such as KE=0.0079, got {item!r}"
            )
        prices[country.upper()] = amount
    return prices


def _locale_of(name: str, value: str) -> str:
    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError) as exc:
        raise ConfigError(f"{name}: unknown locale {value!r}") from exc
    return value
