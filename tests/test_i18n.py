"""UI catalogs, fallback chains, bidi isolation and locale-aware formatting."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import babel.messages.plurals
import pytest
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import Translations

from bot.i18n import (
    FSI,
    PDI,
    SHIPPED_LOCALES,
    SOURCE_LOCALE,
    CatalogError,
    UiCatalogs,
    UiTranslator,
    apply_plural_forms,
    best_locale,
    fallback_chain,
    format_date,
    format_datetime,
    format_number,
    format_percent,
    format_time,
    is_rtl,
    isolate,
    isolate_ltr_runs,
    language_name,
    parse_locale,
    plural_forms,
)

Messages = dict[str | tuple[str, str], str | tuple[str, ...]]


def write_catalog(
    locales_dir: Path,
    locale: str,
    messages: Messages,
    *,
    fuzzy: frozenset[str] = frozenset(),
    compiled: bool = False,
) -> Path:
    """Write locales/<locale>/LC_MESSAGES/messages.po (and .mo if `compiled`); return the .po."""
    catalog = Catalog(locale=locale, domain="messages")
    apply_plural_forms(catalog)
    for msgid, msgstr in messages.items():
        flags = ["fuzzy"] if (msgid if isinstance(msgid, str) else msgid[0]) in fuzzy else []
        catalog.add(msgid, msgstr, flags=flags)
    folder = locales_dir / locale / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    po = folder / "messages.po"
    with po.open("wb") as handle:
        write_po(handle, catalog)
    if compiled:
        with (folder / "messages.mo").open("wb") as handle:
            write_mo(handle, catalog)
    return po


def set_mtime(path: Path, seconds: int) -> None:
    os.utime(path, ns=(seconds * 10**9, seconds * 10**9))


# --- locales and fallback chains ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pt-BR", "pt_BR"),
        ("pt_br", "pt_BR"),
        ("PT-br", "pt_BR"),
        (" sw_KE ", "sw_KE"),
        ("ar", "ar"),
    ],
)
def test_parse_locale_normalises_separators_and_case(value: str, expected: str) -> None:
    assert parse_locale(value) == expected


@pytest.mark.parametrize("value", ["xx-YY", "", "not a locale", "en_US_FOO_BAR_BAZ"])
def test_parse_locale_rejects_unknown_values_by_name(value: str) -> None:
    with pytest.raises(ValueError, match=f"unknown locale {value!r}"):
        parse_locale(value)


@pytest.mark.parametrize(
    ("requested", "default", "expected"),
    [
        ("pt_BR", None, ["pt_BR", "pt", "en"]),
        ("pt-br", None, ["pt_BR", "pt", "en"]),
        ("sw_KE", None, ["sw_KE", "sw", "en"]),
        ("sw_KE", "fr", ["sw_KE", "sw", "fr", "en"]),
        ("fr_CA", "fr", ["fr_CA", "fr", "en"]),  # default already on the chain: no duplicate
        ("en_GB", None, ["en_GB", "en_001", "en"]),  # CLDR parent, not plain truncation
        ("pt_AO", None, ["pt_AO", "pt_PT", "pt", "en"]),
        ("en", "en", ["en"]),
        (None, None, ["en"]),
        (None, "ar", ["ar", "en"]),
    ],
)
def test_fallback_chain(requested: str | None, default: str | None, expected: list[str]) -> None:
    assert fallback_chain(requested, default=default) == expected


def test_fallback_chain_ends_with_the_course_source_locale() -> None:
    assert fallback_chain("pt_BR", source="fr", default="es") == ["pt_BR", "pt", "es", "fr"]


def test_fallback_chain_names_an_unknown_requested_locale() -> None:
    with pytest.raises(ValueError, match="'klingon'"):
        fallback_chain("klingon")


@pytest.mark.parametrize(
    ("requested", "expected"),
    [("pt-br", "pt"), ("sw_KE", "sw"), ("ar_EG", "ar"), ("de", "en"), ("xx", "en"), (None, "en")],
)
def test_best_locale_maps_a_device_language_to_a_shipped_one(
    requested: str | None, expected: str
) -> None:
    assert best_locale(requested) == expected


def test_language_names_are_in_their_own_language_and_capitalised() -> None:
    names = {locale: language_name(locale) for locale in SHIPPED_LOCALES}
    assert names == {
        "en": "English",
        "fr": "Français",
        "es": "Español",
        "ar": "العربية",
        "pt": "Português",
        "sw": "Kiswahili",
    }
    assert language_name("pt-BR") == "Português (Brasil)"


# --- right-to-left -------------------------------------------------------------------


def test_only_arabic_is_rtl_among_shipped_locales() -> None:
    assert [locale for locale in SHIPPED_LOCALES if is_rtl(locale)] == ["ar"]
    assert is_rtl("ar_EG") and is_rtl("he") and not is_rtl("sw_KE")


def test_isolate_wraps_ltr_fragments_only_in_rtl_locales() -> None:
    assert isolate("ABC123", "ar") == "\u2068ABC123\u2069"
    assert isolate("ABC123", "fr") == "ABC123"
    assert isolate("", "ar") == ""


def test_isolate_ltr_runs_wraps_codes_commands_numbers_and_urls() -> None:
    text = "أرسل JOIN ABC123 للانضمام، ثم /next. الدرس 3 من 8. زر https://example.org/sandbox."
    assert isolate_ltr_runs(text, "ar") == (
        f"أرسل {FSI}JOIN ABC123{PDI} للانضمام، ثم {FSI}/next{PDI}. "
        f"الدرس {FSI}3{PDI} من {FSI}8{PDI}. زر {FSI}https://example.org/sandbox{PDI}."
    )


def test_isolate_ltr_runs_is_idempotent_and_leaves_arabic_digits_alone() -> None:
    once = isolate_ltr_runs("أرسل 1 أو A، والرمز 12.5%", "ar")
    assert once == f"أرسل {FSI}1{PDI} أو {FSI}A{PDI}، والرمز {FSI}12.5%{PDI}"
    assert isolate_ltr_runs(once, "ar") == once
    assert isolate_ltr_runs("الدرس ٣ من ٨", "ar") == "الدرس ٣ من ٨"


def test_isolate_ltr_runs_keeps_babel_date_slashes_outside_isolates() -> None:
    formatted = format_date(date(2024, 3, 5), "ar", format="short")
    isolated = isolate_ltr_runs(formatted, "ar")
    assert isolated.replace(FSI, "").replace(PDI, "") == formatted
    assert f"{FSI}/" not in isolated and f"/{PDI}" not in isolated


def test_isolate_ltr_runs_leaves_ltr_locales_unchanged() -> None:
    assert isolate_ltr_runs("Send JOIN ABC123", "sw") == "Send JOIN ABC123"


# --- formatting in the learner's locale and zone ------------------------------------


INSTANT = datetime(2024, 3, 5, 22, 30, tzinfo=UTC)  # 01:30 next day in Nairobi, 22:30 in Dakar


def test_same_instant_in_nairobi_and_dakar_in_french() -> None:
    assert format_datetime(INSTANT, "fr", "Africa/Nairobi") == "6 mars 2024, 01:30:00"
    assert format_datetime(INSTANT, "fr", "Africa/Dakar") == "5 mars 2024, 22:30:00"


def test_same_instant_in_nairobi_and_dakar_in_arabic() -> None:
    nairobi = format_datetime(INSTANT, "ar", "Africa/Nairobi")
    dakar = format_datetime(INSTANT, "ar", "Africa/Dakar")
    assert nairobi == "06\u200f/03\u200f/2024، 1:30:00 ص"  # ص: before noon
    assert dakar == "05\u200f/03\u200f/2024، 10:30:00 م"  # م: after noon


def test_date_and_time_follow_the_learner_zone() -> None:
    assert format_date(INSTANT, "sw", "Africa/Nairobi", format="long") == "6 Machi 2024"
    assert format_date(INSTANT, "sw", "Africa/Dakar", format="long") == "5 Machi 2024"
    assert format_time(INSTANT, "es", "Africa/Nairobi") == "1:30"
    assert format_time(INSTANT, "en", "Africa/Dakar") == "10:30\u202fPM"


def test_naive_datetimes_are_utc_and_no_zone_means_utc() -> None:
    naive = INSTANT.replace(tzinfo=None)
    assert format_datetime(naive, "en", "Africa/Nairobi") == format_datetime(
        INSTANT, "en", "Africa/Nairobi"
    )
    assert format_time(INSTANT, "fr", None) == "22:30"


def test_bare_time_of_day_is_not_shifted() -> None:
    assert format_time(time(21, 0), "fr", "Africa/Nairobi") == "21:00"


def test_unknown_time_zone_is_named() -> None:
    with pytest.raises(ValueError, match="'Mars/Olympus'"):
        format_datetime(INSTANT, "en", "Mars/Olympus")


def test_numbers_and_percentages_follow_the_locale() -> None:
    assert format_number(1234.5, "en") == "1,234.5"
    assert format_number(1234.5, "fr") == "1\u202f234,5"
    assert format_number(Decimal("1234.5"), "pt") == "1.234,5"
    assert format_percent(0.25, "fr") == "25\u00a0%"
    assert format_percent(0.25, "ar") == "25%"  # Babel's default numbering system for "ar"


# --- catalogs ---------------------------------------------------------------------------


def test_translations_follow_the_fallback_chain(tmp_path: Path) -> None:
    write_catalog(tmp_path, "pt", {"Welcome!": "Bem-vindo!", "Next": "Próxima"})
    write_catalog(tmp_path, "pt_BR", {"Next": "Próximo"})
    tr = UiCatalogs(tmp_path).translations("pt-BR")
    assert tr.gettext("Next") == "Próximo"  # pt_BR
    assert tr.gettext("Welcome!") == "Bem-vindo!"  # pt
    assert tr.gettext("Stop") == "Stop"  # source text


def test_default_locale_comes_before_the_source(tmp_path: Path) -> None:
    write_catalog(tmp_path, "fr", {"Help": "Aide"})
    catalogs = UiCatalogs(tmp_path, default="fr")
    assert catalogs.translations("sw").gettext("Help") == "Aide"
    assert UiCatalogs(tmp_path).translations("sw").gettext("Help") == "Help"


def test_missing_catalog_falls_back_silently_to_the_source_text(tmp_path: Path) -> None:
    tr = UiCatalogs(tmp_path / "nowhere").translations("sw")
    assert tr.gettext("Help") == "Help"
    assert tr.ngettext("%(num)d lesson", "%(num)d lessons", 1) == "%(num)d lesson"
    assert tr.ngettext("%(num)d lesson", "%(num)d lessons", 4) == "%(num)d lessons"


def test_translations_are_cached_per_locale(tmp_path: Path) -> None:
    write_catalog(tmp_path, "fr", {"Help": "Aide"})
    catalogs = UiCatalogs(tmp_path)
    assert catalogs.translations("fr") is catalogs.translations("fr")
    assert catalogs.translations("fr_CA").gettext("Help") == "Aide"
    # A chain does not leak into another: fr's own chain is still fr -> en.
    assert catalogs.translations("fr").gettext("Stop") == "Stop"


def test_reload_reads_changed_files(tmp_path: Path) -> None:
    write_catalog(tmp_path, "fr", {"Help": "Aide"})
    catalogs = UiCatalogs(tmp_path)
    assert catalogs.translations("fr").gettext("Help") == "Aide"
    write_catalog(tmp_path, "fr", {"Help": "Au secours"})
    catalogs.reload()
    assert catalogs.translations("fr").gettext("Help") == "Au secours"


def test_available_locales_lists_catalog_directories(tmp_path: Path) -> None:
    write_catalog(tmp_path, "sw", {"Help": "Msaada"})
    write_catalog(tmp_path, "pt_BR", {"Help": "Ajuda"}, compiled=True)
    (tmp_path / "templates").mkdir()
    (tmp_path / "es" / "LC_MESSAGES").mkdir(parents=True)  # no messages catalog
    assert UiCatalogs(tmp_path).available_locales() == ("en", "pt_BR", "sw")


def test_directory_named_with_a_hyphen_is_found(tmp_path: Path) -> None:
    po = write_catalog(tmp_path, "pt_BR", {"Help": "Ajuda"})
    po.parent.parent.rename(tmp_path / "pt-BR")
    assert UiCatalogs(tmp_path).translations("pt_BR").gettext("Help") == "Ajuda"


def test_a_stale_mo_does_not_hide_a_newer_po(tmp_path: Path) -> None:
    po = write_catalog(tmp_path, "fr", {"Help": "Aide (ancienne)"}, compiled=True)
    mo = po.with_suffix(".mo")
    write_catalog(tmp_path, "fr", {"Help": "Aide", "Next": "Suivant"})  # .po edited, not compiled
    set_mtime(mo, 1_700_000_000)
    set_mtime(po, 1_700_000_100)
    tr = UiCatalogs(tmp_path).translations("fr")
    assert tr.gettext("Help") == "Aide"
    assert tr.gettext("Next") == "Suivant"


def test_a_fresh_mo_is_loaded_instead_of_compiling_the_po(tmp_path: Path) -> None:
    po = write_catalog(tmp_path, "fr", {"Help": "Aide (compilée)"}, compiled=True)
    mo = po.with_suffix(".mo")
    write_catalog(tmp_path, "fr", {"Help": "Aide (source)"})
    set_mtime(po, 1_700_000_000)
    set_mtime(mo, 1_700_000_000)  # same age counts as fresh
    assert UiCatalogs(tmp_path).translations("fr").gettext("Help") == "Aide (compilée)"


def test_an_mo_without_its_po_is_used(tmp_path: Path) -> None:
    po = write_catalog(tmp_path, "sw", {"Help": "Msaada"}, compiled=True)
    po.unlink()
    assert UiCatalogs(tmp_path).translations("sw").gettext("Help") == "Msaada"


@pytest.mark.parametrize("compiled", [False, True])
def test_fuzzy_entries_are_never_used(tmp_path: Path, compiled: bool) -> None:
    write_catalog(
        tmp_path,
        "fr",
        {
            "Help": "Aide",
            "Next lesson": "Leçon précédente",
            ("%(num)d day", "%(num)d days"): (
                "%(num)d jour",
                "%(num)d jours",
            ),
        },
        fuzzy=frozenset({"Next lesson", "%(num)d day"}),
        compiled=compiled,
    )
    tr = UiCatalogs(tmp_path).translations("fr")
    assert tr.gettext("Help") == "Aide"
    assert tr.gettext("Next lesson") == "Next lesson"
    assert tr.ngettext("%(num)d day", "%(num)d days", 3) == "%(num)d days"


def test_a_fuzzy_entry_falls_through_to_the_parent_locale(tmp_path: Path) -> None:
    write_catalog(tmp_path, "pt", {"Next": "Próxima"})
    write_catalog(tmp_path, "pt_BR", {"Next": "Seguinte?"}, fuzzy=frozenset({"Next"}))
    assert UiCatalogs(tmp_path).translations("pt_BR").gettext("Next") == "Próxima"


def test_a_broken_po_names_the_file_and_line(tmp_path: Path) -> None:
    po = write_catalog(tmp_path, "fr", {"Help": "Aide"})
    lines = po.read_text(encoding="utf-8").splitlines()
    po.write_text(
        "\n".join([*lines, 'msgid "Next"', "nonsense here", 'msgstr "Suivant"', ""]), "utf-8"
    )
    with pytest.raises(CatalogError) as caught:
        UiCatalogs(tmp_path).translations("fr")
    assert str(caught.value) == (
        f"{po}:{len(lines) + 2}: Unknown or misformatted keyword: 'nonsense here'"
    )


def test_a_corrupt_mo_names_the_file(tmp_path: Path) -> None:
    po = write_catalog(tmp_path, "fr", {"Help": "Aide"}, compiled=True)
    po.with_suffix(".mo").write_bytes(b"not a catalog")
    set_mtime(po, 1_700_000_000)
    with pytest.raises(CatalogError, match=r"messages\.mo: not a valid compiled catalog"):
        UiCatalogs(tmp_path).translations("fr")


def test_translations_satisfy_the_ui_translator_protocol(tmp_path: Path) -> None:
    write_catalog(tmp_path, "es", {"Help": "Ayuda"})

    def help_label(tr: UiTranslator) -> str:
        return tr.gettext("Help")

    assert help_label(UiCatalogs(tmp_path).translations("es")) == "Ayuda"


# --- plurals ----------------------------------------------------------------------------

ARABIC_LESSONS = (
    "لا دروس",  # zero
    "درس واحد",  # one
    "درسان",  # two
    "%(num)d دروس",  # few: 3-10
    "%(num)d درسًا",  # many: 11-99
    "%(num)d درس",  # other: 100, 101, ...
)
CLDR_TAG_ORDER = ("zero", "one", "two", "few", "many", "other")


def test_arabic_catalog_has_six_plural_forms_in_cldr_order() -> None:
    catalog = Catalog(locale="ar", domain="messages")
    apply_plural_forms(catalog)
    assert catalog.num_plurals == 6
    assert catalog.plural_expr == (
        "(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 "
        ": n%100>=11 && n%100<=99 ? 4 : 5)"
    )
    assert catalog.plural_forms == plural_forms("ar")
    # Form i must be CLDR's i-th category for every count, checked against CLDR's own rule.
    cldr = Locale.parse("ar").plural_form
    tr = Translations(BytesIO(_mo_bytes(catalog)))
    forms = [tr.plural(n) for n in range(0, 1201)]  # the header's compiled plural function
    assert [CLDR_TAG_ORDER[form] for form in forms] == [cldr(n) for n in range(0, 1201)]


def test_the_plural_forms_header_survives_a_po_round_trip() -> None:
    catalog = Catalog(locale="ar", domain="messages")
    apply_plural_forms(catalog)
    buffer = BytesIO()
    write_po(buffer, catalog)
    buffer.seek(0)
    assert read_po(buffer, locale="ar").plural_forms == plural_forms("ar")


def test_shipped_languages_keep_their_plural_forms_whatever_babels_data_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Babel 2.19 (CLDR 46) gives French a third form for exact millions: not ours.
    import babel.messages.plurals

    def newer_cldr(locale: object) -> object:
        raise AssertionError(f"Babel's plural data was read for {locale}")

    monkeypatch.setattr(babel.messages.plurals, "get_plural", newer_cldr)
    assert plural_forms("fr") == "nplurals=2; plural=(n > 1);"
    assert plural_forms("pt") == "nplurals=2; plural=(n != 1);"
    assert plural_forms("sw_KE") == "nplurals=2; plural=(n != 1);"


def test_a_language_we_do_not_ship_gets_babels_plural_forms() -> None:
    assert plural_forms("ru") == str(babel.messages.plurals.get_plural("ru"))


@pytest.mark.parametrize(
    ("n", "form"), [(0, 0), (1, 1), (2, 2), (3, 3), (10, 3), (11, 4), (99, 4), (100, 5), (102, 5)]
)
def test_arabic_ngettext_picks_each_of_six_forms(tmp_path: Path, n: int, form: int) -> None:
    write_catalog(tmp_path, "ar", {("%(num)d lesson", "%(num)d lessons"): ARABIC_LESSONS})
    tr = UiCatalogs(tmp_path).translations("ar")
    assert tr.ngettext("%(num)d lesson", "%(num)d lessons", n) == ARABIC_LESSONS[form]


def test_english_source_plurals_need_no_catalog(tmp_path: Path) -> None:
    tr = UiCatalogs(tmp_path).translations(SOURCE_LOCALE)
    assert tr.ngettext("%(num)d lesson", "%(num)d lessons", 1) % {"num": 1} == "1 lesson"
    assert tr.ngettext("%(num)d lesson", "%(num)d lessons", 0) % {"num": 0} == "0 lessons"


def _mo_bytes(catalog: Catalog) -> bytes:
    buffer = BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()
