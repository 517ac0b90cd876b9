"""SMS arithmetic: GSM 03.38 vs UCS-2, units, segments, and splitting without breaking pairs."""

from __future__ import annotations

import re
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

_GUILLEMET_OPEN = re.compile("«[ \u00a0\u202f]*")
_GUILLEMET_CLOSE = re.compile("[ \u00a0\u202f]*»")
_SENTENCE_END = re.compile(r"(?<=[.!?؟।。…])[\"'»”’)\]]*\s+|\n+")
_WORD_END = re.compile(r"\s+")


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
    letters outside GSM-7 (ê, ç): changing spelling is the translator's decision.
    """
    # French guillemets enclose their text with (narrow) spaces; straight quotes do not.
    text = _GUILLEMET_OPEN.sub('"', text)
    text = _GUILLEMET_CLOSE.sub('"', text)
    return text.translate(_FRIENDLY_TABLE)


def split_messages(text: str, max_segments: int) -> list[str]:
    """Split `text` into messages of at most `max_segments` segments each.

    Cuts at sentence ends (or line breaks) first, then between words, and only cuts
    inside a word that is itself too long for one message.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    text = text.strip()
    if segment_count(text) <= max_segments:
        return [text]
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
