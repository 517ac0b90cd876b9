"""Prompt identities: which open prompt a button or a reply answers.

A prompt is anything that waits for the learner's answer: the language menu, a profile
question, the time-zone question, the delete confirmation, or a lesson question. Each has an
identity, and its buttons carry it: the payload `p:<prompt>:<value>` (e.g. `p:lang:lang:fr`,
`p:q1x2k3f:ans:2`). A button whose prompt is no longer open gets a short "closed" note instead
of being read as an answer to whatever prompt is open now.

The identity is the prompt itself (which menu, which question of which lesson), not one showing
of it: asking the same prompt again shows the same buttons, and any of its copies answers it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace

from bot.domain import Button, OutboundMessage

PREFIX = "p:"
CONFIRM_DELETE = "del"
LANGUAGE = "lang"
ZONE = "zone"
# Old-format payloads (before prompt identities) that can only belong to one kind of prompt,
# so a deployed keyboard still works while that kind is open. Question payloads (ans:, tf:,
# rate:) are not among them: they cannot tell which question they came from.
_LEGACY = {
    "lang:": (LANGUAGE,),
    "role:": ("role",),
    "gender:": ("gender",),
    "tz:": (ZONE,),
    "skip": ("role", "country", "gender", ZONE),
    "yes": (CONFIRM_DELETE,),
    "no": (CONFIRM_DELETE,),
}


def for_state(state: str | None) -> str | None:
    """The prompt open in a `learners.dialogue_state` ("language>profile", "profile:role")."""
    if not state:
        return None
    current = state.partition("^")[0]
    if current == "confirm_delete":
        return CONFIRM_DELETE
    if current.startswith("language"):
        return LANGUAGE
    if current.startswith("zone"):
        return ZONE
    if current.startswith("profile:"):
        return current.removeprefix("profile:")
    return None


def for_question(lesson_id: str, question_id: str) -> str:
    """A lesson question's prompt: "q" and a short stable hash (Telegram allows 64 bytes)."""
    digest = zlib.crc32(f"{lesson_id}/{question_id}".encode())
    return "q" + _base36(digest)


def tag(prompt: str, buttons: Sequence[Button]) -> tuple[Button, ...]:
    """The buttons with payloads that name their prompt."""
    return tuple(Button(b.label, f"{PREFIX}{prompt}:{b.payload}") for b in buttons)


def parse(payload: str) -> tuple[str | None, str]:
    """(the prompt a payload names, or None for an old-format payload; its value)."""
    if payload.startswith(PREFIX):
        prompt, sep, value = payload.removeprefix(PREFIX).partition(":")
        if sep and prompt:
            return prompt, value
    return None, payload


def legacy_prompts(value: str) -> tuple[str, ...]:
    """The prompts an old-format payload may still answer (none for question payloads)."""
    for start, prompts in _LEGACY.items():
        if value == start or (start.endswith(":") and value.startswith(start)):
            return prompts
    return ()


def asked(message: OutboundMessage) -> str | None:
    """The prompt a message asks: its buttons name it, or it is a lesson question."""
    if message.buttons:
        found = parse(message.buttons[0].payload)[0]
        if found is not None:
            return found
    lesson, question = message.meta.get("lesson"), message.meta.get("question")
    if lesson is not None and question is not None:
        return for_question(lesson, question)
    return None


def tag_question(message: OutboundMessage) -> OutboundMessage:
    """A question message with its buttons naming it; other messages unchanged."""
    lesson, question = message.meta.get("lesson"), message.meta.get("question")
    if lesson is None or question is None or not message.buttons:
        return message
    if message.buttons[0].payload.startswith(PREFIX):
        return message  # already tagged (a cached lesson)
    return replace(message, buttons=tag(for_question(lesson, question), message.buttons))


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out
