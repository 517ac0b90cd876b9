"""The words learners type: commands in every shipped locale, yes, true and false."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.dialogue.keywords import (
    COMMAND_WORDS,
    FALSE_FORMS,
    TRUE_FORMS,
    YES_WORDS,
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


@pytest.mark.parametrize(
    ("typed", "command"),
    [
        # Today "تقدم" and "IJAYO" got "Sorry, I didn't understand".
        ("تقدم", Command.PROGRESS),
        ("IJAYO", Command.NEXT),
        ("inayofuata", Command.NEXT),
        ("Somo lijalo", Command.NEXT),
        ("endelea", Command.NEXT),
        ("nisaidie", Command.HELP),
        ("anza tena", Command.START),
        # Arabic as it is typed: tashkeel, alef with or without hamza, taa marbuta as haa,
        # alef maqsura for yaa, tatweel, Persian-keyboard yeh.
        ("تَقَدُّم", Command.PROGRESS),
        ("التقدّم", Command.PROGRESS),
        ("التالى", Command.NEXT),
        ("التاليـ", Command.NEXT),
        ("التالی", Command.NEXT),
        ("مساعده", Command.HELP),
        ("المساعدة", Command.HELP),
        ("ساعدني", Command.HELP),
        ("اللغه", Command.LANGUAGE),
        ("ايقاف", Command.STOP),
        ("إلغاء الاشتراك", Command.STOP),
        ("اوقف", Command.STOP),
        ("إبدأ", Command.START),
        ("ابدء", Command.START),
        ("استيناف", Command.START),
        ("تخطى", Command.SKIP),
        ("المنطقه الزمنيه", Command.ZONE),
        ("ٱلتالي", Command.NEXT),
        # Noun and verb forms, with and without accents, in the other locales.
        ("suivante", Command.NEXT),
        ("Leçon suivante", Command.NEXT),
        ("mes progres", Command.PROGRESS),
        ("aidez-moi", Command.HELP),
        ("arrêter", Command.STOP),
        ("desinscription", Command.STOP),
        ("s'inscrire DEMO", Command.JOIN),
        ("continuar", Command.NEXT),
        ("leccion siguiente", Command.NEXT),
        ("ayudame", Command.HELP),
        ("darse de baja", Command.STOP),
        ("proxima licao", Command.NEXT),
        ("meu progresso", Command.PROGRESS),
        ("comecar", Command.START),
        ("lingua", Command.LANGUAGE),
        ("my progress", Command.PROGRESS),
        ("next lesson", Command.NEXT),
    ],
)
def test_words_a_native_speaker_types(typed: str, command: Command) -> None:
    match = find_command(typed)
    assert match is not None, typed
    assert match.command == command, typed


def test_no_word_names_two_commands() -> None:
    seen: dict[str, Command] = {}
    for table in COMMAND_WORDS.values():
        for command, words in table.items():
            for word in words:
                key = normalize(word)
                assert seen.setdefault(key, command) == command, word


def _answers_a_learner_types() -> set[str]:
    """Every reply that answers a prompt: options, yes/true/false, languages, profile, places."""
    from bot.dialogue.answers import _LETTERS
    from bot.dialogue.profile import _country_names, gender_buttons, role_buttons
    from bot.dialogue.zones import _city_index
    from bot.i18n import UiCatalogs, language_name

    ui = UiCatalogs(Path(__file__).resolve().parents[2] / "locales")
    answers = set(TRUE_FORMS | FALSE_FORMS) | set(_LETTERS) | {normalize(w) for w in YES_WORDS}
    for locale in SHIPPED_LOCALES:
        answers |= {normalize(locale), normalize(language_name(locale))}
        tr = ui.translations(locale)
        for button in (*role_buttons(tr), *gender_buttons(tr)):
            if button.payload != "skip":  # "Skip" is the SKIP command on purpose
                answers.add(normalize(button.label))
    return answers | set(_country_names()) | set(_city_index())


def test_no_command_word_is_an_answer_a_learner_types() -> None:
    answers = _answers_a_learner_types()
    clashes = sorted(
        word
        for table in COMMAND_WORDS.values()
        for words in table.values()
        for word in words
        if normalize(word) in answers
    )
    assert clashes == []
