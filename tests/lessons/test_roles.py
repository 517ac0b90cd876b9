"""course.yaml marks the pre-assessment, the post-assessment and the surveys (issue 9 §3)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.lessons.loader import LessonValidationError, load_course

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A copy of the shipped digital-skills course, to edit."""
    return Path(shutil.copytree(ROOT / "lessons" / "digital-skills", tmp_path / "digital-skills"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def issues(course: Path) -> list[str]:
    with pytest.raises(LessonValidationError) as caught:
        load_course(course)
    return [str(issue) for issue in caught.value.issues]


def test_the_shipped_course_counts_eight_lessons_and_three_measures(course: Path) -> None:
    loaded = load_course(course)

    assert len(loaded.teaching_lessons()) == 8
    assert loaded.measuring_lessons() == ["pre-assessment", "post-assessment", "feedback-survey"]
    assert loaded.assessments() == ["pre-assessment", "post-assessment"]
    assert loaded.role("pre-assessment") == "pre_assessment"
    assert loaded.role("data-decisions") == "lesson"
    # The confidence item closes both assessments.
    pre, post = (loaded.lessons[x].questions[-1] for x in ("pre-assessment", "post-assessment"))
    assert (pre.kind, post.kind, pre.prompt) == ("rating", "rating", post.prompt)


def test_a_post_assessment_must_match_the_pre_assessment_item_for_item(course: Path) -> None:
    edit(course / "10-post-assessment.yaml", "    answer: false", "    answer: true")

    [issue] = issues(course)

    assert "10-post-assessment.yaml" in issue and "questions" in issue
    assert "does not match pre-assessment 'pre-assessment' item for item" in issue
    assert "question 'q2' has a different right answer" in issue


def test_a_marked_lesson_needs_the_matching_type(course: Path) -> None:
    edit(course / "course.yaml", "surveys: [feedback-survey]", "surveys: [data-decisions]")

    [issue] = issues(course)

    assert "07-data-decisions.yaml" in issue
    assert "course.yaml marks it as survey: it needs type survey" in issue


def test_a_post_assessment_needs_a_pre_assessment(course: Path) -> None:
    edit(course / "course.yaml", "pre_assessment: pre-assessment\n", "")

    found = issues(course)

    assert any("a post_assessment needs a pre_assessment to compare with" in x for x in found)


def test_a_marked_lesson_must_be_listed(course: Path) -> None:
    edit(course / "course.yaml", "surveys: [feedback-survey]", "surveys: [nope]")

    [issue] = issues(course)

    assert "surveys" in issue and "not in lessons" in issue


def test_only_an_assessment_may_ask_four_questions(course: Path) -> None:
    edit(course / "10-post-assessment.yaml", "type: assessment", "type: lesson")
    edit(course / "course.yaml", "post_assessment: post-assessment\n", "")

    found = issues(course)

    assert any("4 questions: a lesson has at most 3" in x for x in found), found
