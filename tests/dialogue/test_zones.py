"""Time-zone helpers: a country's clocks, offsets and city names as learners write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.dialogue.zones import (
    country_zones,
    find_zone,
    parse_offset,
    phone_zone_choices,
    same_clock,
    zone_for_offset,
    zone_from_payload,
    zone_label,
)

JANUARY = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
JULY = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


def test_a_country_has_one_choice_per_clock_west_to_east() -> None:
    assert country_zones("KE") == ("Africa/Nairobi",)
    assert country_zones("cd") == ("Africa/Kinshasa", "Africa/Lubumbashi")
    # Zones that keep the same time all year are one clock, shown by its best-known city.
    us = country_zones("US")
    assert us[-4:] == ("America/Phoenix", "America/Denver", "America/Chicago", "America/New_York")
    assert "America/Detroit" not in us and "America/Indiana/Knox" not in us
    assert "America/Sao_Paulo" in country_zones("BR")
    assert country_zones("ZZ") == ()


def test_same_clock_means_the_same_time_all_year() -> None:
    assert same_clock("Africa/Nairobi", "Africa/Kampala")
    assert same_clock("Asia/Calcutta", "Asia/Kolkata")  # an old name and its new one
    # Same offset in winter, not in summer: Phoenix keeps no daylight-saving time.
    assert not same_clock("America/Denver", "America/Phoenix")


def test_a_number_gives_its_own_zone_or_its_countrys_clocks() -> None:
    assert phone_zone_choices("+254700000001") == ("Africa/Nairobi",)
    assert phone_zone_choices("+243810000000") == ("Africa/Kinshasa", "Africa/Lubumbashi")
    assert phone_zone_choices("+15550100") == ()


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("+3", 3),
        ("UTC+3", 3),
        ("utc + 3", 3),
        ("GMT-5", -5),
        ("−5", -5),  # the minus sign, as phones type it
        ("+05:30", 5.5),
        ("+0545", 5.75),
        ("UTC", 0),
        ("+٣", 3),  # Arabic-Indic digit
        ("UTC+14", 14),
    ],
)
def test_offsets_as_learners_write_them(text: str, hours: float) -> None:
    assert parse_offset(text) == timedelta(hours=hours)


@pytest.mark.parametrize("text", ["3", "+15", "-13", "+3:20", "Nairobi", "", "UTC+"])
def test_what_is_not_an_offset(text: str) -> None:
    assert parse_offset(text) is None


def test_an_offset_prefers_an_offered_zone_then_a_fixed_one() -> None:
    offered = ("Europe/London", "Europe/Paris")
    assert zone_for_offset(timedelta(hours=1), offered, JANUARY) == "Europe/Paris"
    assert zone_for_offset(timedelta(hours=1), offered, JULY) == "Europe/London"  # BST
    assert zone_for_offset(timedelta(hours=3), offered, JANUARY) == "Etc/GMT-3"
    assert zone_for_offset(timedelta(hours=-5), (), JANUARY) == "Etc/GMT+5"
    assert zone_for_offset(timedelta(0), (), JANUARY) == "UTC"
    quarter = zone_for_offset(timedelta(hours=5, minutes=45), (), JANUARY)
    assert quarter == "Asia/Kathmandu"


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Nairobi", "Africa/Nairobi"),
        ("  sao paulo ", "America/Sao_Paulo"),
        ("São Paulo", "America/Sao_Paulo"),
        ("Le Caire", "Africa/Cairo"),  # French
        ("القاهرة", "Africa/Cairo"),  # Arabic
        ("Dar es Salaam", "Africa/Dar_es_Salaam"),
        ("Sénégal", "Africa/Dakar"),  # a country with one clock
        ("UTC-3", "Etc/GMT+3"),
    ],
)
def test_find_zone_reads_cities_countries_and_offsets(text: str, zone: str) -> None:
    assert find_zone(text, (), JANUARY) == zone


@pytest.mark.parametrize("text", ["Brazil", "2", "Atlantis", ""])
def test_find_zone_refuses_what_names_no_single_clock(text: str) -> None:
    assert find_zone(text, (), JANUARY) is None


def test_labels_name_the_city_in_the_learners_language() -> None:
    assert zone_label("Africa/Cairo", "fr") == "Le Caire"
    assert zone_label("Africa/Cairo", "ar") == "القاهرة"
    assert zone_label("Etc/GMT-3", "en") == "UTC+3"
    assert zone_label("Etc/GMT+5", "sw") == "UTC-5"
    assert zone_label("UTC", "pt") == "UTC"


def test_payloads_name_real_zones_only() -> None:
    assert zone_from_payload("tz:Africa/Dakar") == "Africa/Dakar"
    assert zone_from_payload("tz:Mars/Olympus") is None
    assert zone_from_payload("lang:fr") is None
