"""SMS arithmetic: GSM 03.38 vs UCS-2, units, segments, folding, and cheapest splitting."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet (without 0x1B, the escape to the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (escape + character).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
MULTI = {"GSM-7": 153, "UCS-2": 67}  # a 6-byte UDH takes the rest of each part

# Typographic characters that push Latin text into UCS-2 by accident, and their GSM-7 stand-ins.
_FRIENDLY = {
    **dict.fromkeys("‘’‚‛′‹›`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−⁃", "-"),
    **dict.fromkeys("•‣◦∙·▪●", "-"),
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009", " "),
    **dict.fromkeys("\u200a\u202f\u205f\u3000\t", " "),
    **dict.fromkeys("\u200b\u2060\ufeff\u00ad", ""),  # invisible: zero-width space, soft hyphen
    "…": "...",
    "œ": "oe",
    "Œ": "OE",
    "ﬁ": "fi",
    "ﬂ": "fl",
    "×": "x",
    "÷": "/",
    "™": "TM",
    "©": "(c)",
    "®": "(R)",
    "\u2028": "\n",
    "\u2029": "\n",
}
_FRIENDLY_TABLE = str.maketrans(_FRIENDLY)

# Locales whose SMS text is folded to GSM-7 by default (LEARNBOT_SMS_FOLD overrides it): Latin
# script languages that stay readable without the few accents GSM-7 lacks (ç ê â ô á í ó ú ã õ);
# é è à ù ñ ü and friends are in GSM-7 and are kept. Arabic is absent: its script has no GSM-7
# form, so it stays UCS-2.
DEFAULT_SMS_FOLD = frozenset({"en", "fr", "es", "pt", "sw"})

# Letters whose fold is not "drop the accent" (NFD does the rest: ê -> e, ã -> a, Í -> I).
_LETTERS = {"œ": "oe", "Œ": "OE", "ç": "c", "ª": "a", "º": "o", "ð": "d", "Ð": "D", "þ": "th"}

_GUILLEMET_OPEN = re.compile("«[ \u00a0\u202f]*")
_GUILLEMET_CLOSE = re.compile("[ \u00a0\u202f]*»")
_SENTENCE_END = re.compile(r"(?<=[.!?؟।。…])[\"'»”’)\]]*\s+|\n+")
_WORD_END = re.compile(r"\s+")
_SENTENCE_STOPS = ".!?؟।。…"
_CLOSING = "\"'»”’)]"


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` exists in the GSM 03.38 default or extension table."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def sms_encoding(text: str) -> Encoding:
    """The encoding a phone network needs for `text`: GSM-7 when possible, else UCS-2."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def _char_units(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # UTF-16: astral characters take a surrogate pair


def sms_units(text: str, encoding: Encoding | None = None) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) that `text` takes."""
    encoding = encoding or sms_encoding(text)
    return sum(_char_units(char, encoding) for char in text)


def split_segments(text: str) -> list[str]:
    """The payload of each segment sent, never splitting an escape pair or a surrogate pair."""
    encoding = sms_encoding(text)
    if sms_units(text, encoding) <= SINGLE[encoding]:
        return [text]
    limit = MULTI[encoding]
    segments: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        units = _char_units(char, encoding)
        if used + units > limit:
            segments.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += units
    segments.append("".join(current))
    return segments


def segment_count(text: str) -> int:
    """How many segments `text` costs as one SMS (160/153 GSM-7, 70/67 UCS-2)."""
    return len(split_segments(text))


def gsm_friendly(text: str) -> str:
    """Replace typographic quotes, dashes, ellipses, odd spaces and bullets with GSM-7 ones.

    Letters are left alone: real non-Latin scripts stay as they are, and so do accented
    letters outside GSM-7 (ê, ç); `fold_to_gsm7` respells those where a locale's policy says so.
    """
    # French guillemets enclose their text with (narrow) spaces; straight quotes do not.
    text = _GUILLEMET_OPEN.sub('"', text)
    text = _GUILLEMET_CLOSE.sub('"', text)
    return text.translate(_FRIENDLY_TABLE)


def fold_to_gsm7(text: str) -> str:
    """`gsm_friendly`, then every Latin letter outside GSM-7 spelt with its nearest GSM-7 one.

    ç -> c (GSM-7 has only Ç), ê -> e, ã -> a, œ -> oe; letters GSM-7 has (é è à ù ñ ü Ç) stay,
    and so does anything with no GSM-7 equivalent (Arabic, emoji), which keeps the text UCS-2.
    """
    return "".join(_fold_char(char) for char in gsm_friendly(text))


def _fold_char(char: str) -> str:
    if char in GSM7_BASIC or char in GSM7_EXTENSION:
        return char
    if char in _LETTERS:
        return _LETTERS[char]
    base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
    return base if base and is_gsm7(base) else char


def folds(locale: str, fold_locales: Collection[str]) -> bool:
    """Whether SMS text in `locale` (`pt`, `pt_BR`, `pt-BR`) is folded to GSM-7."""
    language = re.split("[_-]", locale, maxsplit=1)[0].lower()
    return locale in fold_locales or language in fold_locales


def sms_text(text: str, locale: str, fold_locales: Collection[str] = DEFAULT_SMS_FOLD) -> str:
    """The text an SMS in `locale` carries: folded to GSM-7, or with only typography replaced.

    A text that stays UCS-2 even folded (it holds Arabic or an emoji) keeps its accents: they
    cost nothing more there, and "Français" in a language menu stays spelt as its speakers do.
    """
    friendly = gsm_friendly(text)
    if not folds(locale, fold_locales):
        return friendly
    folded = fold_to_gsm7(friendly)
    return folded if is_gsm7(folded) else friendly


def split_messages(text: str, max_segments: int) -> list[str]:
    """Split `text` into messages of at most `max_segments` segments each, costing fewest segments.

    Separate messages are cheaper than one long one when each fits a single segment (160
    septets, 70 UCS-2 units, against 153 and 67 per part of a concatenated one), so a text
    may be split even when it would fit in one message. Messages end at sentence ends or
    line breaks (a learner reads each SMS on its own: "2) Understand the" alone would be a
    wrong option); among those splits it takes the one costing fewest segments, then the
    fewest messages. Only a sentence too long for one message is cut between words, and only
    a word too long for one message inside it.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    text = text.strip()
    if segment_count(text) <= 1:
        return [text]
    cheapest = _cheapest_split(text, max_segments, words=False)
    if cheapest is None:
        cheapest = _cheapest_split(text, max_segments, words=True)
    if cheapest is not None:
        return cheapest
    parts: list[str] = []
    for piece in _pack(_pieces(text, _SENTENCE_END), max_segments):
        if segment_count(piece) <= max_segments:
            parts.append(piece)
            continue
        for chunk in _pack(_pieces(piece, _WORD_END), max_segments):
            parts.extend(_hard_split(chunk, max_segments))
    return [part for part in parts if part]


def _pieces(text: str, boundary: re.Pattern[str]) -> list[str]:
    # Each piece keeps its trailing separator so that joining pieces restores the text.
    pieces = []
    start = 0
    for match in boundary.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _pack(pieces: list[str], max_segments: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for piece in pieces:
        candidate = current + piece
        if not current or segment_count(candidate.strip()) <= max_segments:
            current = candidate
        else:
            parts.append(current.strip())
            current = piece
    if current.strip():
        parts.append(current.strip())
    return parts


def _hard_split(text: str, max_segments: int) -> list[str]:
    if segment_count(text) <= max_segments:
        return [text]
    segments = split_segments(text)
    return ["".join(segments[i : i + max_segments]) for i in range(0, len(segments), max_segments)]


def _cut_points(text: str) -> list[tuple[int, int, bool]]:
    # Every run of white space: (end of the part before, start of the part after, whether the
    # cut falls inside a sentence, i.e. not after a sentence end or at a line break).
    return [
        (match.start(), match.end(), not _after_sentence(text, match))
        for match in _WORD_END.finditer(text)
    ]


def _after_sentence(text: str, space: re.Match[str]) -> bool:
    before = text[max(0, space.start() - 8) : space.start()].rstrip(_CLOSING)  # a few quotes
    return "\n" in space.group() or before.endswith(tuple(_SENTENCE_STOPS))


def _cheapest_split(text: str, max_segments: int, *, words: bool) -> list[str] | None:
    """The split of fewest (segments, cuts inside sentences, messages); None if none fits.

    Without `words`, only sentence ends and line breaks are cut points.
    """
    cuts = [cut for cut in _cut_points(text) if words or not cut[2]]
    starts = [0, *(start for _, start, _ in cuts)]
    ends = [*(end for end, _, _ in cuts), len(text)]
    inside = [*(word for _, _, word in cuts), False]
    # Prefix sums so that any slice's encoding and length cost O(1).
    ucs2 = [0]
    septets = [0]
    utf16 = [0]
    for char in text:
        ucs2.append(ucs2[-1] + (not (char in GSM7_BASIC or char in GSM7_EXTENSION)))
        septets.append(septets[-1] + _char_units(char, "GSM-7"))
        utf16.append(utf16[-1] + _char_units(char, "UCS-2"))
    longest = MULTI["GSM-7"] * max_segments
    infinity = (math.inf, math.inf, math.inf)
    # best[k]: the cheapest way to send text[:ends[k-1]] ending with a cut at point k-1.
    best: list[tuple[float, float, float]] = [infinity] * (len(ends) + 1)
    previous = [-1] * (len(ends) + 1)
    best[0] = (0, 0, 0)
    for i, start in enumerate(starts):
        if best[i] == infinity:
            continue
        for j in range(i, len(ends)):
            end = ends[j]
            if septets[end] - septets[start] > longest:
                break
            if ucs2[end] - ucs2[start]:
                units, encoding = utf16[end] - utf16[start], "UCS-2"
            else:
                units, encoding = septets[end] - septets[start], "GSM-7"
            segments = 1 if units <= SINGLE[encoding] else math.ceil(units / MULTI[encoding])
            if segments > max_segments:
                continue
            cost = (
                best[i][0] + segments,
                best[i][1] + (inside[j] if j < len(ends) - 1 else 0),
                best[i][2] + 1,
            )
            if cost < best[j + 1]:
                best[j + 1], previous[j + 1] = cost, i
    if best[len(ends)] == infinity:
        return None
    parts: list[str] = []
    k = len(ends)
    while k > 0:
        i = previous[k]
        parts.append(text[starts[i] : ends[k - 1]].strip())
        k = i
    return [part for part in reversed(parts) if part]
