"""The words learners type: commands in every shipped locale, yes, true and false."""

from __future__ import annotations

import pytest

from bot.dialogue.keywords import (
    COMMAND_WORDS,
    FALSE_FORMS,
    TRUE_FORMS,
    Command,
    find_command,
    help_word,
    is_yes,
    normalize,
)
from bot.i18n import SHIPPED_LOCALES

EVERY_WORD = [
    pytest.param(locale, command, word, id=f"{locale}-{command}-{word}")
    for locale, table in COMMAND_WORDS.items()
    for command, words in table.items()
    for word in words
]


def test_every_shipped_locale_has_every_command() -> None:
    for locale in SHIPPED_LOCALES:
        assert set(COMMAND_WORDS[locale]) == set(Command), locale


@pytest.mark.parametrize(("locale", "command", "word"), EVERY_WORD)
def test_each_keyword_is_recognised_in_any_case_with_slash_and_punctuation(
    locale: str, command: Command, word: str
) -> None:
    for typed in (word, word.lower(), f"/{word.lower()}", f"  {word}!  "):
        match = find_command(typed)
        assert match is not None, typed
        assert match.command == command, typed


@pytest.mark.parametrize(
    ("typed", "command"),
    [
        ("arret", Command.STOP),  # accents ignored
        ("ARRÊT", Command.STOP),
        ("Stopall", Command.STOP),
        ("unsubscribe", Command.STOP),
        ("alto", Command.STOP),
        ("acha", Command.STOP),
        ("توقف", Command.STOP),
        ("demarrer", Command.START),
        ("ابدا", Command.START),  # hamza dropped by the learner's keyboard
        ("ابدأ", Command.START),
        ("Próximo", Command.NEXT),
        ("proximo", Command.NEXT),
        ("Supprimer mes donnees", Command.DELETE),
        ("delete my data.", Command.DELETE),
    ],
)
def test_spelling_variants(typed: str, command: Command) -> None:
    match = find_command(typed)
    assert match is not None and match.command == command


def test_join_keeps_the_code_as_typed() -> None:
    match = find_command("Rejoindre: abc-123")
    assert match is not None
    assert (match.command, match.locale, match.argument) == (Command.JOIN, "fr", "abc-123")
    deep_link = find_command("/start@learnbot DEMO")
    assert deep_link is not None and (deep_link.command, deep_link.argument) == (
        Command.START,
        "DEMO",
    )


def test_yes_is_not_a_restart_word() -> None:
    assert find_command("YES") is None
    assert is_yes("yes") and is_yes("Oui") and is_yes("sí") and is_yes("ndiyo") and is_yes("نعم")
    assert not is_yes("no") and not is_yes("yes please delete")


def test_true_and_false_forms_do_not_overlap_commands() -> None:
    assert not TRUE_FORMS & FALSE_FORMS
    for word in TRUE_FORMS | FALSE_FORMS:
        assert find_command(word) is None, word


def test_normalize_digits_and_marks() -> None:
    assert normalize("١٢٣") == "123"
    assert normalize("  Ça  VA?! ") == "ca va"


def test_help_word_is_in_the_learners_language() -> None:
    assert help_word(Command.STOP, "fr") == "ARRÊT"
    assert help_word(Command.NEXT, "pt_BR") == "PRÓXIMO"
    assert help_word(Command.HELP, "xx") == "HELP"
