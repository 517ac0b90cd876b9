"""SMS encoding, units, segments and splitting."""

from __future__ import annotations

import pytest

from bot.lessons.sms import (
    gsm_friendly,
    segment_count,
    sms_encoding,
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
