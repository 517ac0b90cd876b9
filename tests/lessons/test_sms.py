"""SMS encoding, units, segments and splitting."""

from __future__ import annotations

import pytest

from bot.lessons.sms import (
    DEFAULT_SMS_FOLD,
    fold_to_gsm7,
    folds,
    gsm_friendly,
    segment_count,
    sms_encoding,
    sms_text,
    sms_units,
    split_messages,
    split_segments,
)


def test_plain_ascii_is_gsm7() -> None:
    assert sms_encoding("Hello, world! 1) yes") == "GSM-7"
    assert sms_encoding("Les données à jour, où ça? É") == "UCS-2"  # ç is not in GSM-7
    assert sms_encoding("Les données à jour, où? Ç") == "GSM-7"


def test_extension_characters_take_two_septets() -> None:
    assert sms_units("€") == 2
    assert sms_units("a^{}\\[~]|€\f") == 1 + 2 * 10
    assert sms_encoding("[x] {y} ~z € |") == "GSM-7"


def test_gsm7_single_segment_boundary_at_160() -> None:
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("a" * 158 + "€") == 1  # 160 septets
    assert segment_count("a" * 159 + "€") == 2  # 161 septets


def test_gsm7_multipart_boundary_at_153() -> None:
    assert segment_count("a" * 306) == 2
    assert segment_count("a" * 307) == 3
    segments = split_segments("a" * 307)
    assert [len(s) for s in segments] == [153, 153, 1]


def test_escape_pair_is_never_split() -> None:
    # The euro sign would straddle septets 153/154: it moves whole to the next segment.
    text = "a" * 152 + "€" + "b" * 20
    segments = split_segments(text)

    assert segments[0] == "a" * 152
    assert segments[1].startswith("€")
    assert "".join(segments) == text
    assert all(sms_units(s, "GSM-7") <= 153 for s in segments)


def test_ucs2_boundaries_at_70_and_67() -> None:
    assert sms_encoding("مرحبا") == "UCS-2"
    assert segment_count("ب" * 70) == 1
    assert segment_count("ب" * 71) == 2
    assert segment_count("ب" * 134) == 2
    assert segment_count("ب" * 135) == 3


def test_emoji_counts_two_utf16_units() -> None:
    assert sms_encoding("Bravo 👍") == "UCS-2"
    assert sms_units("👍") == 2
    assert segment_count("👍" * 35) == 1
    assert segment_count("👍" * 36) == 2


def test_emoji_at_a_segment_boundary_is_not_split() -> None:
    # 66 units, then an emoji that would occupy units 67 and 68.
    text = "ب" * 66 + "👍" + "ب" * 10
    segments = split_segments(text)

    assert segments == ["ب" * 66, "👍" + "ب" * 10]
    assert segment_count(text) == 2


def test_gsm_friendly_replaces_typography() -> None:
    text = "« L’équipe » — c’est “prêt”… • ok\u00a0: oui\u202f!"

    assert gsm_friendly(text) == '"L\'équipe" - c\'est "prêt"... - ok : oui !'


def test_gsm_friendly_keeps_a_french_lesson_in_gsm7() -> None:
    lesson = (
        "Données ouvertes\n\nPublier des données dans des formats ouverts permet à d’autres "
        "de les réutiliser… « Ouvert » veut dire : lisible par tous – sans licence payante."
    )
    assert sms_encoding(lesson) == "UCS-2"

    friendly = gsm_friendly(lesson)

    assert sms_encoding(friendly) == "GSM-7"
    assert segment_count(friendly) < segment_count(lesson)


def test_gsm_friendly_leaves_other_scripts_and_accents_alone() -> None:
    assert gsm_friendly("مرحبا بك") == "مرحبا بك"
    assert gsm_friendly("Привет") == "Привет"
    assert gsm_friendly("être reçu") == "être reçu"


def test_split_messages_keeps_short_text_whole() -> None:
    assert split_messages("  Short text.  ", 3) == ["Short text."]


def test_split_messages_cuts_at_sentence_ends() -> None:
    sentences = [f"Sentence number {n} is here and says a little more." for n in range(12)]
    text = " ".join(sentences)

    parts = split_messages(text, 1)

    assert len(parts) > 1
    assert all(segment_count(part) == 1 for part in parts)
    assert all(part.endswith(".") for part in parts)
    assert " ".join(parts) == text


def test_split_messages_cuts_between_words_when_a_sentence_is_too_long() -> None:
    text = " ".join(["word"] * 100)  # 499 characters, no sentence end

    parts = split_messages(text, 1)

    assert all(segment_count(part) == 1 for part in parts)
    assert all(part.split(" ") == ["word"] * len(part.split(" ")) for part in parts)
    assert " ".join(parts) == text


def test_split_messages_hard_splits_a_huge_word() -> None:
    parts = split_messages("x" * 500, 2)

    assert [len(p) for p in parts] == [306, 194]
    assert all(segment_count(p) <= 2 for p in parts)


def test_split_messages_rejects_zero_segments() -> None:
    with pytest.raises(ValueError):
        split_messages("x", 0)


# --- folding: the per-locale SMS text policy ---------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "text", "folded"),
    [
        ("fr", "Être reçu à l’hôpital… « Où ça ? »", 'Etre recu à l\'hopital... "Où ca ?"'),
        ("fr", "cœur, Ça, naïf, maître", "coeur, Ça, naif, maitre"),
        (
            "es",
            "¿Qué información? Sí, también: año, pingüino",
            "¿Qué informacion? Si, también: año, pingüino",
        ),
        ("pt", "Ação, informação, você, está, avó, pôr", "Acao, informacao, voce, esta, avo, por"),
        ("pt", "Privacidade, segurança e ética", "Privacidade, seguranca e ética"),
        ("sw", "Jibu kwa “namba” ya jibu lako", 'Jibu kwa "namba" ya jibu lako'),
    ],
)
def test_folded_locales_become_gsm7_and_keep_the_letters_gsm7_has(
    locale: str, text: str, folded: str
) -> None:
    assert sms_encoding(text) == "UCS-2" or locale == "sw"

    assert sms_text(text, locale) == folded
    assert sms_encoding(folded) == "GSM-7"


def test_fold_keeps_every_gsm7_letter() -> None:
    letters = "éèùìòÇØøÅåÄäÖöÑñÜüà¿¡ßÉÆæ"
    assert fold_to_gsm7(letters) == letters


def test_arabic_is_never_folded_and_stays_ucs2() -> None:
    text = "اختر رقم إجابتك «نعم»"

    assert not folds("ar", DEFAULT_SMS_FOLD)
    assert sms_encoding(sms_text(text, "ar")) == "UCS-2"
    assert "اختر رقم إجابتك" in sms_text(text, "ar")
    # Even when asked to fold, Arabic letters have no GSM-7 form: they are kept.
    assert sms_encoding(sms_text(text, "ar", {"ar"})) == "UCS-2"


def test_fold_is_configurable_per_locale() -> None:
    text = "Ação rápida"

    assert sms_text(text, "pt") == "Acao rapida"
    assert sms_text(text, "pt_BR") == "Acao rapida"  # a regional locale follows its language
    assert sms_text(text, "pt", {"fr"}) == "Ação rápida"  # not folded: UCS-2 at its price
    assert sms_encoding(sms_text(text, "pt", frozenset())) == "UCS-2"


# --- splitting: fewest segments ----------------------------------------------------------------


def test_split_avoids_a_segment_holding_a_handful_of_characters() -> None:
    first = "Question 1 of 2\n" + "Which step comes first? " * 5 + "x" * 14  # 150 septets
    second = "1) Option one\n" + "y" * 146  # 160 septets
    text = f"{first}\n{second}"
    assert segment_count(text) == 3  # 311 septets: 153 + 153 + 5
    assert split_segments(text)[-1] == "y" * 5

    parts = split_messages(text, 3)

    assert parts == [first, second]
    assert [segment_count(part) for part in parts] == [1, 1]


def test_split_prefers_one_message_when_splitting_saves_nothing() -> None:
    text = "A sentence of some length here. " * 9  # 287 characters: 2 segments either way

    assert split_messages(text, 3) == [text.strip()]


def test_split_never_cuts_a_line_between_words_to_save_a_segment() -> None:
    # Cutting after "2) Understand the needs" would give two messages of one segment each
    # instead of one of three, but a learner would read that message's option 2 as complete.
    options = ["1) " + "a" * 100, "2) Understand the needs and the troubles of the users"]
    text = "\n".join(["Which comes first?", *options, "3) " + "c" * 105, "Reply with the number"])
    assert segment_count(text) == 3

    parts = split_messages(text, 3)

    lines = [line for part in parts for line in part.split("\n")]
    assert all(option in lines for option in options)


def test_split_cuts_a_ucs2_message_where_it_costs_least() -> None:
    sentence = "ب" * 67 + "."
    text = f"{sentence} {sentence}"  # 137 units: 67 + 67 + 3 as one message
    assert segment_count(text) == 3

    assert split_messages(text, 3) == [sentence, sentence]  # 68 + 68: one segment each


def test_a_text_that_stays_ucs2_keeps_its_accents() -> None:
    menu = "Choose your language:\n1) English\n2) Français\n3) Português\n4) العربية"

    assert sms_text(menu, "en") == menu  # Arabic needs UCS-2 anyway: folding would save nothing
    assert sms_text("Ação 👍", "pt") == "Ação 👍"
