"""Lesson messages (shared by the dialogue and the preview) and their rendering per channel."""

from __future__ import annotations

from collections.abc import Collection

from bot.domain import Button, ChannelName, Image, OutboundMessage, RenderedMessage
from bot.i18n import UiTranslator, isolate
from bot.lessons.models import (
    FreeText,
    Lesson,
    MultipleSelect,
    Rating,
    SingleChoice,
    TrueFalse,
)
from bot.lessons.sms import (
    DEFAULT_SMS_FOLD,
    segment_count,
    sms_encoding,
    sms_text,
    split_messages,
)

MAX_CALLBACK_BYTES = 64  # Telegram's limit on inline-button callback data
TITLE_META = "title"  # a lesson message's meta key: its title, emphasised where the channel can
BUTTON_CHANNELS = frozenset({ChannelName.TELEGRAM, ChannelName.SANDBOX})
RATING_SCALE = range(1, 6)

__all__ = [
    "UiTranslator",
    "lesson_messages",
    "lesson_sequence",
    "question_message",
    "render",
]


# --- rendering per channel -----------------------------------------------------------------


def render(
    message: OutboundMessage,
    *,
    sms_max_segments: int = 3,
    sms_fold: Collection[str] = DEFAULT_SMS_FOLD,
) -> list[RenderedMessage]:
    """Turn one channel-neutral message into what its channel transmits (SMS may give several).

    SMS text follows its locale's policy (`sms_fold`: the locales folded to GSM-7, see
    `bot.lessons.sms.sms_text`) and is split at the cheapest points.
    """
    if message.channel in BUTTON_CHANNELS:
        for button in message.buttons:
            if len(button.payload.encode("utf-8")) > MAX_CALLBACK_BYTES:
                raise ValueError(
                    f"button payload {button.payload!r} is longer than {MAX_CALLBACK_BYTES} bytes"
                )
        title = title_span(message.text, message.meta.get(TITLE_META, ""))
        return [
            RenderedMessage(
                channel=message.channel,
                address=message.address,
                text=message.text,
                buttons=message.buttons,
                image_url=message.image.url if message.image else None,
                is_reply=message.is_reply,
                bold=(title,) if title else (),
            )
        ]
    if message.channel == ChannelName.WHATSAPP:
        return [
            RenderedMessage(
                channel=message.channel,
                address=message.address,
                text=_whatsapp_bold_title(_with_choices(message.text, message), message),
                image_url=message.image.url if message.image else None,
                is_reply=message.is_reply,
            )
        ]
    # SMS has no formatting: the title stays plain (and costs no extra characters).
    return _render_sms(message, sms_max_segments, sms_fold)


def title_span(text: str, title: str) -> tuple[int, int] | None:
    """Where `title` stands as a line of its own in `text`: (start, end), or None."""
    if not title:
        return None
    start = text.find(title)
    while start >= 0:
        end = start + len(title)
        if (start == 0 or text[start - 1] == "\n") and (end == len(text) or text[end] == "\n"):
            return start, end
        start = text.find(title, start + 1)
    return None


def _whatsapp_bold_title(text: str, message: OutboundMessage) -> str:
    # WhatsApp's own markup: *bold*. It has no escape, so a title holding a markup character
    # stays plain rather than be garbled.
    title = message.meta.get(TITLE_META, "")
    span = title_span(text, title)
    if span is None or any(mark in title for mark in "*_~`"):
        return text
    start, end = span
    return f"{text[:start]}*{title}*{text[end:]}"


def _render_sms(
    message: OutboundMessage, max_segments: int, fold: Collection[str]
) -> list[RenderedMessage]:
    text = message.text
    if message.image is not None:
        # SMS carries no media: the alt text stands in for the image.
        text = f"{text}\n\n{message.image.alt}" if text else message.image.alt
    text = sms_text(_with_choices(text, message), message.locale, fold)
    return [
        RenderedMessage(
            channel=message.channel,
            address=message.address,
            text=part,
            encoding=sms_encoding(part),
            segments=segment_count(part),
            is_reply=message.is_reply,
        )
        for part in split_messages(text, max_segments)
    ]


def _with_choices(text: str, message: OutboundMessage) -> str:
    # Text channels have no buttons: numbered lines stand in for them. A message that is not
    # `numbered` already says in its text what to reply, so its buttons are simply dropped.
    if not message.buttons or not message.numbered:
        return text
    return "\n".join([text, "", *numbered_lines(message.buttons, message.locale)])


def numbered_lines(buttons: tuple[Button, ...], locale: str) -> list[str]:
    """`1) label` per button, the number isolated in right-to-left locales."""
    return [f"{isolate(f'{n})', locale)} {b.label}" for n, b in enumerate(buttons, start=1)]


# --- lesson messages -----------------------------------------------------------------------


def lesson_messages(
    lesson: Lesson,
    *,
    channel: ChannelName,
    address: str,
    locale: str,
    ui: UiTranslator,
    is_reply: bool = False,
) -> list[OutboundMessage]:
    """The lesson (title, body, image) followed by its first question; `lesson` is localized.

    `is_reply` is True when the learner asked for it (NEXT), False for scheduled sends.
    """
    image = Image(str(lesson.image.url), lesson.image.alt) if lesson.image else None
    title = lesson.title.strip()
    intro = OutboundMessage(
        channel=channel,
        address=address,
        text=f"{title}\n\n{lesson.body.strip()}",
        locale=locale,
        image=image,
        is_reply=is_reply,
        meta={"lesson": lesson.id, "part": "lesson", TITLE_META: title},
    )
    first = question_message(
        lesson, 0, channel=channel, address=address, locale=locale, ui=ui, is_reply=is_reply
    )
    return [intro, first]


def lesson_sequence(
    lesson: Lesson,
    *,
    channel: ChannelName,
    address: str,
    locale: str,
    ui: UiTranslator,
) -> list[tuple[str, OutboundMessage]]:
    """Every message each learner gets for a lesson, named: the lesson, then each question.

    Feedback is left out: it depends on the answers. `lessons check` and `lessons preview`
    both count this sequence, so they agree.
    """
    messages = lesson_messages(
        lesson, channel=channel, address=address, locale=locale, ui=ui, is_reply=True
    )
    messages.extend(
        question_message(lesson, index, channel=channel, address=address, locale=locale, ui=ui)
        for index in range(1, len(lesson.questions))
    )
    return [
        ("lesson" if number == 0 else f"question {number}", message)
        for number, message in enumerate(messages)
    ]


def question_message(
    lesson: Lesson,
    index: int,
    *,
    channel: ChannelName,
    address: str,
    locale: str,
    ui: UiTranslator,
    is_reply: bool = True,
) -> OutboundMessage:
    """Question `index` (0-based) of a localized lesson, with buttons or reply hints."""
    question = lesson.questions[index]
    text_only = channel not in BUTTON_CHANNELS
    # Blank lines set the choices apart; on SMS each costs a character of a paid segment.
    gap = [] if channel == ChannelName.SMS else [""]
    lines: list[str] = []
    total = len(lesson.questions)
    if total > 1:
        lines.append(
            ui.gettext("Question {number} of {total}").format(
                number=isolate(str(index + 1), locale), total=isolate(str(total), locale)
            )
        )
    lines.append(question.prompt.strip())
    buttons: tuple[Button, ...] = ()
    hint: str | None = None
    if isinstance(question, SingleChoice):
        buttons = tuple(
            Button(option.text, f"ans:{n}") for n, option in enumerate(question.options, start=1)
        )
        hint = ui.gettext("Reply with the number of your answer")
    elif isinstance(question, TrueFalse):
        buttons = (Button(ui.gettext("True"), "tf:true"), Button(ui.gettext("False"), "tf:false"))
        hint = ui.gettext("Reply with the number of your answer")
    elif isinstance(question, MultipleSelect):
        # Several answers cannot be one button press: numbered lines on every channel.
        options = tuple(Button(option.text, "") for option in question.options)
        lines.extend([*gap, *numbered_lines(options, locale), *gap])
        lines.append(
            ui.gettext("Reply with every number that applies, e.g. {example}").format(
                example=isolate("1,3", locale)
            )
        )
    elif isinstance(question, Rating):
        lines.extend(_scale_lines(question, locale))
        buttons = tuple(Button(str(n), f"rate:{n}") for n in RATING_SCALE)
        hint = ui.gettext("Reply with a number from {low} to {high}").format(
            low=isolate(str(RATING_SCALE[0]), locale), high=isolate(str(RATING_SCALE[-1]), locale)
        )
    elif isinstance(question, FreeText):
        lines.append(ui.gettext("Reply with a short message"))
    if text_only and buttons:
        # Number the choices here, before the hint; the buttons stay on the message so the
        # reply "2" maps to buttons[1], and `numbered=False` keeps render from repeating them.
        if not isinstance(question, Rating):  # "1) 1 ... 5) 5" would only cost more
            lines.extend([*gap, *numbered_lines(buttons, locale), *gap])
        if hint:
            lines.append(hint)
    return OutboundMessage(
        channel=channel,
        address=address,
        text="\n".join(lines),
        locale=locale,
        buttons=buttons,
        numbered=not text_only,
        is_reply=is_reply,
        meta={"lesson": lesson.id, "question": question.id, "index": str(index)},
    )


def _scale_lines(question: Rating, locale: str) -> list[str]:
    lines = []
    if question.low_label:
        lines.append(f"{isolate(str(RATING_SCALE[0]), locale)} = {question.low_label}")
    if question.high_label:
        lines.append(f"{isolate(str(RATING_SCALE[-1]), locale)} = {question.high_label}")
    return lines
