"""Settings from the environment and `.env`, validated once into one frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class ConfigError(ValueError):
    """A setting has a wrong value; the message names the setting."""


DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/learnbot.db"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
DEV_SECRET_KEY = "dev-only-insecure-key-change-me"


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
    demo: bool = False

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
            demo=_flag("LEARNBOT_DEMO", get("LEARNBOT_DEMO", "0")),
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
    if not value.isdigit() or not 0 < int(value) < 65536:
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
    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError) as exc:
        raise ConfigError(f"LEARNBOT_DEFAULT_LOCALE: unknown locale {value!r}") from exc
    return value


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected 0/1 or true/false, got {value!r}")
