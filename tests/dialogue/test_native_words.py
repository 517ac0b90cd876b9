"""Words a learner naturally types get the command's answer, not "Sorry, I didn't understand"."""

from __future__ import annotations

import pytest

from bot.dialogue import Dialogue
from bot.i18n import language_name
from tests.dialogue.conftest import Chat, joined


@pytest.mark.parametrize(
    ("locale", "typed", "usual"),
    [
        # Today both got "Sorry, I didn't understand".
        ("ar", "تقدم", "تقدمي"),
        ("sw", "IJAYO", "IFUATAYO"),
        ("ar", "مساعده", "مساعدة"),
        ("sw", "inayofuata", "IFUATAYO"),
        ("fr", "mes progrès", "PROGRÈS"),
    ],
)
async def test_a_natural_word_answers_as_the_usual_one(
    dialogue: Dialogue, locale: str, typed: str, usual: str
) -> None:
    natural, reference = Chat(dialogue, "+15550101"), Chat(dialogue, "+15550102")
    for chat in (natural, reference):
        await joined(chat, language_name(locale))

    got, expected = await natural.say(typed), await reference.say(usual)

    assert got == expected
