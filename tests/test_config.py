"""Settings: defaults, .env, and a clear error naming each wrong setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, check_secret_key_for_serving


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
        # Unicode digits: "²".isdigit() is True, and int("٣") is 3.
        ("LEARNBOT_PORT", "²", "LEARNBOT_PORT"),
        ("LEARNBOT_PORT", "٨٠٨٠", "LEARNBOT_PORT"),
        ("LEARNBOT_SMS_MAX_SEGMENTS", "²", "LEARNBOT_SMS_MAX_SEGMENTS"),
        ("LEARNBOT_SMS_MAX_SEGMENTS", "100000", "LEARNBOT_SMS_MAX_SEGMENTS"),
        # timedelta(days=99999999999) raises OverflowError.
        ("LEARNBOT_MISFIRE_GRACE", "99999999999d", "LEARNBOT_MISFIRE_GRACE"),
        ("LEARNBOT_MISFIRE_GRACE", "400d", "LEARNBOT_MISFIRE_GRACE"),
        ("LEARNBOT_MISFIRE_GRACE", "٣h", "LEARNBOT_MISFIRE_GRACE"),
        # An infinite rate was accepted, then the limiter raised OverflowError every second.
        ("TWILIO_SMS_MPS", "inf", "TWILIO_SMS_MPS"),
        ("TWILIO_WHATSAPP_MPS", "inf", "TWILIO_WHATSAPP_MPS"),
        ("TWILIO_SMS_MPS", "nan", "TWILIO_SMS_MPS"),
        ("TWILIO_SMS_MPS", "1e999", "TWILIO_SMS_MPS"),
        ("TWILIO_SMS_MPS", "1e-300", "TWILIO_SMS_MPS"),
        ("TWILIO_WHATSAPP_MPS", "50000", "TWILIO_WHATSAPP_MPS"),
        # A valid locale that no catalog ships was accepted silently.
        ("LEARNBOT_DEFAULT_LOCALE", "de", "LEARNBOT_DEFAULT_LOCALE"),
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


def test_bounded_settings_accept_their_sensible_range(dirs: dict[str, str]) -> None:
    settings = Settings.from_env(
        {
            **dirs,
            "LEARNBOT_PORT": " 65535 ",
            "TWILIO_SMS_MPS": "0.5",
            "TWILIO_WHATSAPP_MPS": "400",
            "LEARNBOT_SMS_MAX_SEGMENTS": "10",
            "LEARNBOT_MISFIRE_GRACE": "365d",
            "LEARNBOT_DEFAULT_LOCALE": "sw",
        },
        env_file=None,
    )
    assert settings.port == 65535
    assert (settings.twilio_sms_mps, settings.twilio_whatsapp_mps) == (0.5, 400.0)
    assert settings.sms_max_segments == 10
    assert settings.misfire_grace.days == 365
    assert settings.default_locale == "sw"


def test_serving_on_the_development_key_is_refused_outside_a_demo(dirs: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="LEARNBOT_SECRET_KEY"):
        check_secret_key_for_serving(Settings.from_env(dirs, env_file=None))
    check_secret_key_for_serving(Settings.from_env({**dirs, "LEARNBOT_DEMO": "1"}, env_file=None))
    own_key = {**dirs, "LEARNBOT_SECRET_KEY": "x" * 32, "LEARNBOT_PUBLIC_URL": "http://bot.lan"}
    check_secret_key_for_serving(Settings.from_env(own_key, env_file=None))  # plain http is fine


def test_sms_fold_lists_locales_or_none(dirs: dict[str, str]) -> None:
    def fold(value: str) -> frozenset[str]:
        return Settings.from_env({**dirs, "LEARNBOT_SMS_FOLD": value}, env_file=None).sms_fold

    assert Settings.from_env(dirs, env_file=None).sms_fold == {"en", "es", "fr", "pt", "sw"}
    assert fold("fr, pt-BR") == {"fr", "pt_BR"}
    assert fold("none") == fold("") == frozenset()
    with pytest.raises(ConfigError, match="LEARNBOT_SMS_FOLD: unknown locale 'xx'"):
        fold("fr,xx")


def test_sms_prices_are_per_country_and_a_bad_pair_is_named(dirs: dict[str, str]) -> None:
    def prices(value: str) -> dict[str, float]:
        settings = Settings.from_env({**dirs, "LEARNBOT_SMS_PRICES": value}, env_file=None)
        return dict(settings.sms_prices)

    assert Settings.from_env(dirs, env_file=None).sms_prices == {}
    assert prices("KE=0.0079, sn=0.031") == {"KE": 0.0079, "SN": 0.031}
    for bad in ("KE", "KE=cheap", "KEN=0.01", "KE=-1", "KE=inf", "KE=nan"):
        with pytest.raises(ConfigError, match=f"LEARNBOT_SMS_PRICES: .*got '{bad}'"):
            prices(f"SN=0.03,{bad}")


def test_twilio_connection_overrides_name_a_bad_pair(dirs: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="TWILIO_WEBHOOK_OVERRIDES: 'retry=always'"):
        Settings.from_env({**dirs, "TWILIO_WEBHOOK_OVERRIDES": "#rc=5&retry=always"}, env_file=None)
    overrides = {**dirs, "TWILIO_WEBHOOK_OVERRIDES": "#rc=5&rp=5xx,ct,rt&tt=15000"}
    settings = Settings.from_env(overrides, env_file=None)
    assert settings.twilio_webhook_overrides == "rc=5&rp=5xx,ct,rt&tt=15000"
