"""A cohort's name per locale: the one a learner reads, from their locale or its parents."""

from __future__ import annotations

from bot.store.cohort_names import localized_name, stored_names

NAMES = {"pt": "Turma de demonstração", "es_419": "Grupo de demo", "ar": "مجموعة تجريبية"}


def test_the_learners_locale_then_its_parents_then_the_cohorts_name() -> None:
    assert localized_name("Demo cohort", NAMES, "ar") == "مجموعة تجريبية"
    assert localized_name("Demo cohort", NAMES, "pt_BR") == "Turma de demonstração"
    assert localized_name("Demo cohort", NAMES, "pt-AO") == "Turma de demonstração"
    assert localized_name("Demo cohort", NAMES, "es_AR") == "Grupo de demo"  # CLDR: es_419
    assert localized_name("Demo cohort", NAMES, "sw") == "Demo cohort"
    assert localized_name("Demo cohort", NAMES, "not a locale") == "Demo cohort"
    assert localized_name("Demo cohort", {}, "ar") == "Demo cohort"


def test_stored_names_ignore_what_is_not_a_name() -> None:
    assert stored_names(None) == {}
    assert stored_names(["ar"]) == {}
    assert stored_names({"ar": "مجموعة", "sw": "", "fr": 3}) == {"ar": "مجموعة"}
