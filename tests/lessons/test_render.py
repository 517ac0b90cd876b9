"""Lesson messages and their rendering per channel."""

from __future__ import annotations

import pytest

from bot.domain import Button, ChannelName, Image, OutboundMessage
from bot.i18n import FSI, PDI
from bot.lessons.models import Lesson
from bot.lessons.render import lesson_messages, question_message, render

FRENCH_UI = {
    "Question {number} of {total}": "Question {number} sur {total}",
    "True": "Vrai",
    "False": "Faux",
    "Reply with the number of your answer": "Répondez avec le numéro de votre réponse",
}


class DictUi:
    """A UI translator backed by a dict, like a loaded catalog."""

    def __init__(self, table: dict[str, str] | None = None) -> None:
        self.table = table or {}

    def gettext(self, message: str, /) -> str:
        return self.table.get(message, message)

    def ngettext(self, singular: str, plural: str, n: int, /) -> str:
        return self.gettext(singular if n == 1 else plural)


LESSON = Lesson.model_validate(
    {
        "id": "open-data",
        "title": "Données ouvertes",
        "body": "Publier des données… « ouvertes » aide tout le monde.",
        "image": {"url": "https://example.org/open.png", "alt": "Un tableau de chiffres"},
        "questions": [
            {
                "id": "q1",
                "kind": "single_choice",
                "prompt": "Quel format est ouvert ?",
                "options": [{"text": "CSV"}, {"text": "PDF scanné"}],
                "answer": 1,
            },
            {"id": "q2", "kind": "true_false", "prompt": "JSON est ouvert.", "answer": True},
            {
                "id": "q3",
                "kind": "multiple_select",
                "prompt": "Lesquels sont ouverts ?",
                "options": [{"text": "CSV"}, {"text": "XLS"}, {"text": "JSON"}],
                "answers": [1, 3],
            },
        ],
    }
)
SURVEY = Lesson.model_validate(
    {
        "id": "survey",
        "title": "Feedback",
        "body": "Tell us.",
        "questions": [
            {
                "id": "r",
                "kind": "rating",
                "prompt": "Useful?",
                "low_label": "No",
                "high_label": "Yes",
            },
            {"id": "t", "kind": "free_text", "prompt": "Why?"},
        ],
    }
)


def messages(channel: ChannelName, locale: str = "fr") -> list[OutboundMessage]:
    return lesson_messages(
        LESSON, channel=channel, address="a1", locale=locale, ui=DictUi(FRENCH_UI)
    )


def test_lesson_is_intro_then_first_question() -> None:
    intro, question = messages(ChannelName.TELEGRAM)

    assert intro.text.startswith("Données ouvertes\n\nPublier")
    assert intro.image == Image("https://example.org/open.png", "Un tableau de chiffres")
    assert question.text.splitlines()[:2] == ["Question 1 sur 3", "Quel format est ouvert ?"]
    assert question.buttons == (Button("CSV", "ans:1"), Button("PDF scanné", "ans:2"))
    assert question.meta == {"lesson": "open-data", "question": "q1", "index": "0"}


def test_telegram_keeps_buttons_and_image() -> None:
    intro, question = messages(ChannelName.TELEGRAM)

    [rendered_intro] = render(intro)
    [rendered_question] = render(question)

    assert rendered_intro.image_url == "https://example.org/open.png"
    assert rendered_question.buttons == question.buttons
    assert "1) CSV" not in rendered_question.text  # buttons, not numbered lines
    assert rendered_question.encoding is None


def test_telegram_rejects_a_payload_over_64_bytes() -> None:
    message = OutboundMessage(
        ChannelName.TELEGRAM, "a1", "Pick", "en", buttons=(Button("x", "p" * 65),)
    )

    with pytest.raises(ValueError, match="64 bytes"):
        render(message)


def test_whatsapp_numbers_the_options_and_keeps_the_image() -> None:
    intro, question = messages(ChannelName.WHATSAPP)

    [rendered_intro] = render(intro)
    [rendered_question] = render(question)

    assert rendered_intro.image_url == "https://example.org/open.png"
    assert rendered_question.buttons == ()
    assert rendered_question.text.splitlines()[-4:] == [
        "1) CSV",
        "2) PDF scanné",
        "",
        "Répondez avec le numéro de votre réponse",
    ]


def test_whatsapp_numbers_buttons_of_other_messages() -> None:
    message = OutboundMessage(
        ChannelName.WHATSAPP,
        "a1",
        "Language?",
        "en",
        buttons=(Button("English", "lang:en"), Button("Français", "lang:fr")),
    )

    [rendered] = render(message)

    assert rendered.text == "Language?\n\n1) English\n2) Français"


def test_sms_uses_alt_text_and_gsm_friendly_text() -> None:
    intro, _ = messages(ChannelName.SMS)

    parts = render(intro)

    assert [p.image_url for p in parts] == [None]
    assert parts[0].text.endswith("Un tableau de chiffres")
    assert '"ouvertes"' in parts[0].text and "..." in parts[0].text
    assert parts[0].encoding == "GSM-7"
    assert parts[0].segments == 1


def test_sms_splits_a_long_lesson_and_counts_segments() -> None:
    long = LESSON.model_copy(update={"body": "Une phrase assez longue pour compter. " * 30})
    intro = lesson_messages(long, channel=ChannelName.SMS, address="a1", locale="fr", ui=DictUi())[
        0
    ]

    parts = render(intro, sms_max_segments=2)

    assert len(parts) > 1
    assert all(p.segments <= 2 and p.encoding == "GSM-7" for p in parts)
    assert all(p.text.endswith((".", "chiffres")) for p in parts)


def test_true_false_buttons_are_translated() -> None:
    question = question_message(
        LESSON, 1, channel=ChannelName.SANDBOX, address="a1", locale="fr", ui=DictUi(FRENCH_UI)
    )

    assert question.buttons == (Button("Vrai", "tf:true"), Button("Faux", "tf:false"))
    assert question.text.startswith("Question 2 sur 3\nJSON est ouvert.")


def test_multiple_select_is_numbered_with_a_hint_on_every_channel() -> None:
    for channel in ChannelName:
        question = question_message(
            LESSON, 2, channel=channel, address="a1", locale="en", ui=DictUi()
        )
        assert question.buttons == ()
        assert "1) CSV\n2) XLS\n3) JSON" in question.text
        assert question.text.endswith("Reply with every number that applies, e.g. 1,3")


def test_rating_buttons_and_scale() -> None:
    telegram = question_message(
        SURVEY, 0, channel=ChannelName.TELEGRAM, address="a1", locale="en", ui=DictUi()
    )
    sms = question_message(
        SURVEY, 0, channel=ChannelName.SMS, address="a1", locale="en", ui=DictUi()
    )

    assert [b.payload for b in telegram.buttons] == [f"rate:{n}" for n in range(1, 6)]
    assert "1 = No\n5 = Yes" in telegram.text
    [part] = render(sms)
    assert part.text.endswith("Reply with a number from 1 to 5")
    assert "1) 1" not in part.text


def test_free_text_has_a_hint_and_no_buttons() -> None:
    question = question_message(
        SURVEY, 1, channel=ChannelName.WHATSAPP, address="a1", locale="en", ui=DictUi()
    )

    assert question.buttons == ()
    assert question.text.endswith("Why?\nReply with a short message")


def test_numbers_are_isolated_in_right_to_left_locales() -> None:
    question = question_message(
        LESSON, 0, channel=ChannelName.SMS, address="a1", locale="ar", ui=DictUi()
    )

    [part] = render(question)

    assert f"{FSI}1{PDI}" in part.text.splitlines()[0]
    assert f"{FSI}1){PDI} CSV" in part.text
    assert part.encoding == "UCS-2"


PORTUGUESE = Lesson.model_validate(
    {
        "id": "privacidade",
        "title": "Privacidade, segurança e ética",
        "body": "Recolha apenas o necessário e guarde-o em segurança.",
        "questions": [
            {
                "id": "q1",
                "kind": "single_choice",
                "prompt": "Que informação protege?",
                "options": [{"text": "Senhas"}, {"text": "Ações"}],
                "answer": 1,
            }
        ],
    }
)


def portuguese(channel: ChannelName) -> list[OutboundMessage]:
    return lesson_messages(PORTUGUESE, channel=channel, address="a1", locale="pt", ui=DictUi())


def test_sms_folds_portuguese_to_gsm7_by_default() -> None:
    intro, question = portuguese(ChannelName.SMS)

    parts = render(intro) + render(question)

    assert [p.encoding for p in parts] == ["GSM-7", "GSM-7"]
    assert parts[0].text.startswith("Privacidade, seguranca e ética\n\nRecolha apenas o necessario")
    assert "2) Acoes" in parts[1].text


def test_sms_keeps_accents_of_a_locale_not_folded() -> None:
    intro, _ = portuguese(ChannelName.SMS)

    parts = render(intro, sms_fold={"fr"})

    assert [p.encoding for p in parts] == ["UCS-2"]
    assert "segurança" in parts[0].text


def test_fold_applies_to_sms_only() -> None:
    intro, _ = portuguese(ChannelName.WHATSAPP)

    assert "segurança" in render(intro)[0].text


def test_sms_choices_have_no_blank_lines_but_whatsapp_keeps_them() -> None:
    sms = question_message(
        LESSON, 0, channel=ChannelName.SMS, address="a", locale="fr", ui=DictUi()
    )
    whatsapp = question_message(
        LESSON, 0, channel=ChannelName.WHATSAPP, address="a", locale="fr", ui=DictUi()
    )

    assert "ouvert ?\n1) CSV\n2) PDF scanné\nReply with" in sms.text
    assert "ouvert ?\n\n1) CSV\n2) PDF scanné\n\nReply with" in whatsapp.text


ARABIC = Lesson.model_validate(
    {
        "id": "open-data",
        "title": "البيانات المفتوحة",
        "body": "نشر البيانات يساعد الجميع.",
        "questions": [{"id": "q", "kind": "true_false", "prompt": "CSV مفتوح.", "answer": True}],
    }
)


def intro_of(lesson: Lesson, channel: ChannelName, locale: str = "fr") -> OutboundMessage:
    return lesson_messages(lesson, channel=channel, address="a1", locale=locale, ui=DictUi())[0]


@pytest.mark.parametrize("channel", [ChannelName.TELEGRAM, ChannelName.SANDBOX])
def test_the_title_is_bold_on_telegram(channel: ChannelName) -> None:
    # Today the title went as plain text, like the body.
    [rendered] = render(intro_of(LESSON, channel))

    assert rendered.text.startswith("Données ouvertes\n\n")  # no markup in the text itself
    assert rendered.bold == ((0, len("Données ouvertes")),)


def test_the_title_is_bold_in_whatsapps_markup() -> None:
    [rendered] = render(intro_of(LESSON, ChannelName.WHATSAPP))
    [arabic] = render(intro_of(ARABIC, ChannelName.WHATSAPP, "ar"))

    assert rendered.text.startswith("*Données ouvertes*\n\nPublier")
    assert arabic.text.startswith("*البيانات المفتوحة*\n\n")
    assert rendered.bold == ()


def test_the_title_stays_plain_on_sms() -> None:
    parts = render(intro_of(LESSON, ChannelName.SMS))

    assert parts[0].text.startswith("Données ouvertes\n\n")
    assert "*" not in "".join(part.text for part in parts)
    assert all(part.bold == () for part in parts)


def test_a_title_with_whatsapp_markup_characters_stays_plain_there() -> None:
    starred = LESSON.model_copy(update={"title": "Data * rules"})

    [rendered] = render(intro_of(starred, ChannelName.WHATSAPP))

    assert rendered.text.startswith("Data * rules\n\n")


def test_the_title_is_found_after_a_prefix_and_only_as_its_own_line() -> None:
    intro = intro_of(LESSON, ChannelName.TELEGRAM)
    prefixed = OutboundMessage(
        intro.channel, intro.address, f"Bravo !\n\n{intro.text}", intro.locale, meta=intro.meta
    )

    [rendered] = render(prefixed)

    start = len("Bravo !\n\n")
    assert rendered.bold == ((start, start + len("Données ouvertes")),)
    # A question or a reply has no title: nothing is bold.
    assert render(messages(ChannelName.TELEGRAM)[1])[0].bold == ()


def test_a_lesson_queued_in_the_outbox_keeps_its_bold_title() -> None:
    from bot.store.deliveries import decode_messages, encode_messages

    [queued] = decode_messages(encode_messages([intro_of(LESSON, ChannelName.TELEGRAM)]))

    assert render(queued)[0].bold == ((0, len("Données ouvertes")),)
