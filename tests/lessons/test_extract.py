"""The Babel extractor: msgctxt per field and the real line numbers."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract

from bot.lessons.extract import extract_lessons
from bot.lessons.loader import LessonValidationError
from tests.lessons.conftest import FIXTURES

COURSE = FIXTURES / "lessons" / "civic"


def extracted(path: Path) -> list[tuple[int, str, str | None, list[str]]]:
    with path.open("rb") as handle:
        return [
            (lineno, message, context, comments)
            for lineno, message, comments, context in extract(extract_lessons, handle)
        ]


def test_lesson_strings_have_msgctxt_and_lines() -> None:
    found = {
        context: (lineno, message)
        for lineno, message, context, _ in extracted(COURSE / "01-know-your-users.yaml")
    }

    assert found["know-your-users/title"] == (2, "Know your users")
    assert found["know-your-users/body"][0] == 3
    assert found["know-your-users/body"][1].startswith("Before you build a service")
    assert found["know-your-users/image.alt"] == (8, "An official listens to a citizen at a desk.")
    assert found["know-your-users/q1/prompt"] == (12, "What should you do first?")
    assert found["know-your-users/q1/option.2"] == (16, "Talk to the people who will use it")
    assert found["know-your-users/q1/feedback.2"] == (17, "Right. Their needs come first.")
    assert found["know-your-users/q2/feedback.correct"][0] == 25
    assert found["know-your-users/q2/feedback.incorrect"][0] == 26
    # Option 3 has no feedback: nothing to translate.
    assert "know-your-users/q1/feedback.3" not in found
    assert len(found) == 12


def test_rating_labels_and_multiple_select() -> None:
    found = {context: lineno for lineno, _, context, _ in extracted(COURSE / "02-open-data.yaml")}

    assert found["open-data/formats/option.3"] == 12
    assert found["open-data/useful/low_label"] == 20
    assert found["open-data/useful/high_label"] == 21
    assert found["open-data/reflect/prompt"] == 24


def test_course_title_and_description() -> None:
    found = extracted(COURSE / "course.yaml")

    assert [(lineno, context) for lineno, _, context, _ in found] == [
        (2, "course/title"),
        (3, "course/description"),
    ]


def test_body_carries_an_sms_comment_for_translators() -> None:
    comments = {context: c for _, _, context, c in extracted(COURSE / "01-know-your-users.yaml")}

    assert any("480" in comment for comment in comments["know-your-users/body"])


def test_invalid_file_stops_extraction(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: X\nbody: B\nquestions: []\nextra: 1\n", encoding="utf-8")

    with pytest.raises(LessonValidationError) as caught:
        extracted(bad)

    assert {issue.field for issue in caught.value.issues} == {"questions", "extra"}


def test_extractor_is_registered_for_babel() -> None:
    handle = io.BytesIO((COURSE / "course.yaml").read_bytes())

    found = list(extract("learnbot_lessons", handle))

    assert found[0][1] == "Civic tech basics"
    assert found[0][3] == "course/title"
