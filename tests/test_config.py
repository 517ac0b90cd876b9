"""Settings: defaults, .env, and a clear error naming each wrong setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "lessons").mkdir()
    (tmp_path / "locales").mkdir()
    return {
        "LEARNBOT_LESSONS_DIR": str(tmp_path / "lessons"),
        "LEARNBOT_LOCALES_DIR": str(tmp_path / "locales"),
    }


def test_defaults_are_the_embedded_ones(dirs: dict[str, str]) -> None:
    settings = Settings.from_env(dirs, env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///data/learnbot.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.default_locale == "en"
    assert settings.demo is False


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path, dirs: dict[str, str]) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nLEARNBOT_PORT=9000\nexport LEARNBOT_DEMO='1'\n")
    settings = Settings.from_env({**dirs, "LEARNBOT_PORT": "9100"}, env_file=env_file)
    assert settings.port == 9100
    assert settings.demo is True


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LEARNBOT_DATABASE_URL", "mysql://localhost/x", "LEARNBOT_DATABASE_URL"),
        ("LEARNBOT_DATABASE_URL", "not a url", "LEARNBOT_DATABASE_URL"),
        ("LEARNBOT_PORT", "eighty", "LEARNBOT_PORT"),
        ("LEARNBOT_PORT", "70000", "LEARNBOT_PORT"),
        ("LEARNBOT_PUBLIC_URL", "bot.example.org", "LEARNBOT_PUBLIC_URL"),
        ("LEARNBOT_SECRET_KEY", "short", "LEARNBOT_SECRET_KEY"),
        ("LEARNBOT_DEFAULT_LOCALE", "xx_YY", "LEARNBOT_DEFAULT_LOCALE"),
        ("LEARNBOT_DEMO", "maybe", "LEARNBOT_DEMO"),
        ("LEARNBOT_LESSONS_DIR", "/no/such/dir", "LEARNBOT_LESSONS_DIR"),
        ("TELEGRAM_WEBHOOK_SECRET", "has spaces in it", "TELEGRAM_WEBHOOK_SECRET"),
        ("TELEGRAM_API_URL", "api.telegram.org", "TELEGRAM_API_URL"),
        ("TWILIO_WHATSAPP_FROM", "+14155550100", "TWILIO_WHATSAPP_FROM"),
        ("TWILIO_SMS_MPS", "0", "TWILIO_SMS_MPS"),
        ("TWILIO_WHATSAPP_TEMPLATES", "fr:not-a-sid", "TWILIO_WHATSAPP_TEMPLATES"),
        ("LEARNBOT_SMS_MAX_SEGMENTS", "0", "LEARNBOT_SMS_MAX_SEGMENTS"),
        ("LEARNBOT_MISFIRE_GRACE", "six hours", "LEARNBOT_MISFIRE_GRACE"),
    ],
)
def test_a_wrong_value_names_its_setting(
    dirs: dict[str, str], name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**dirs, name: value}, env_file=None)


def test_a_malformed_env_file_line_is_named(tmp_path: Path, dirs: dict[str, str]) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LEARNBOT_PORT=9000\nthis line has no equals sign\n")
    with pytest.raises(ConfigError, match=r"\.env:2"):
        Settings.from_env(dirs, env_file=env_file)


def test_postgres_url_is_accepted(dirs: dict[str, str]) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    assert (
        Settings.from_env({**dirs, "LEARNBOT_DATABASE_URL": url}, env_file=None).database_url == url
    )


def test_channel_and_scheduling_settings(dirs: dict[str, str]) -> None:
    sid = "HX" + "0123456789abcdef" * 2
    settings = Settings.from_env(
        {
            **dirs,
            "TELEGRAM_BOT_TOKEN": "123:abc",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "token",
            "TWILIO_WHATSAPP_FROM": "whatsapp:+14155550100",
            "TWILIO_WHATSAPP_TEMPLATES": f"fr:{sid}, sw:{sid}",
            "LEARNBOT_MISFIRE_GRACE": "90m",
        },
        env_file=None,
    )
    assert settings.telegram_enabled and settings.twilio_enabled
    assert settings.twilio_whatsapp_templates == {"fr": sid, "sw": sid}
    assert settings.misfire_grace.total_seconds() == 5400
    assert settings.telegram_api_url == "https://api.telegram.org/bot"


def test_sms_fold_lists_locales_or_none(dirs: dict[str, str]) -> None:
    def fold(value: str) -> frozenset[str]:
        return Settings.from_env({**dirs, "LEARNBOT_SMS_FOLD": value}, env_file=None).sms_fold

    assert Settings.from_env(dirs, env_file=None).sms_fold == {"en", "es", "fr", "pt", "sw"}
    assert fold("fr, pt-BR") == {"fr", "pt_BR"}
    assert fold("none") == fold("") == frozenset()
    with pytest.raises(ConfigError, match="LEARNBOT_SMS_FOLD: unknown locale 'xx'"):
        fold("fr,xx")
