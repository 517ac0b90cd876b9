"""Loading courses: every user error names file, line and field, and loads nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.lessons.loader import (
    LessonIssue,
    LessonValidationError,
    load_course,
    load_courses,
    scan_courses,
)
from tests.lessons.conftest import Workspace

LESSON_1 = "01-know-your-users.yaml"


def only_issue(workspace: Workspace) -> LessonIssue:
    with pytest.raises(LessonValidationError) as caught:
        load_courses(workspace.lessons)
    assert len(caught.value.issues) == 1, caught.value.issues
    return caught.value.issues[0]


def test_fixture_course_loads_in_course_order(workspace: Workspace) -> None:
    courses = load_courses(workspace.lessons)

    civic = courses["civic"]
    assert list(civic.lessons) == ["know-your-users", "open-data"]
    assert civic.files["open-data"] == workspace.course / "02-open-data.yaml"
    assert civic.lessons["know-your-users"].questions[0].id == "q1"
    assert civic.warnings == []


def test_bad_yaml_names_the_line(workspace: Workspace) -> None:
    path = workspace.edit(LESSON_1, "    prompt: What should you do first?", "    prompt: [oops")

    issue = only_issue(workspace)

    assert issue.file == path
    assert "bad YAML" in issue.message
    assert issue.line in (12, 13)
    assert str(issue).startswith(f"{path}:{issue.line}: bad YAML")


def test_unknown_field_names_line_and_path(workspace: Workspace) -> None:
    path = workspace.edit(LESSON_1, "    answer: 2\n", "    answer: 2\n    hint: look up\n")

    issue = only_issue(workspace)

    assert (issue.file, issue.line, issue.field) == (path, 20, "questions[0].hint")
    assert issue.message == "unknown field 'hint'"


def test_missing_answer_is_no_correct_option(workspace: Workspace) -> None:
    path = workspace.edit(LESSON_1, "    answer: 2\n", "")

    issue = only_issue(workspace)

    # The question has no `answer` line: the error points at the question itself.
    assert (issue.file, issue.line, issue.field) == (path, 10, "questions[0].answer")
    assert "no correct option" in issue.message


def test_answer_out_of_range(workspace: Workspace) -> None:
    path = workspace.edit(LESSON_1, "    answer: 2\n", "    answer: 7\n")

    issue = only_issue(workspace)

    assert str(issue) == (
        f"{path}:19: questions[0].answer: answer 7 is out of range: there are 3 options"
    )


def test_multiple_select_answer_out_of_range(workspace: Workspace) -> None:
    path = workspace.edit("02-open-data.yaml", "answers: [1, 3]", "answers: [1, 4]")

    issue = only_issue(workspace)

    assert (issue.file, issue.line, issue.field) == (path, 13, "questions[0].answers")
    assert "answer 4 is out of range" in issue.message


def test_duplicate_question_id(workspace: Workspace) -> None:
    path = workspace.edit(LESSON_1, "  - id: q2\n", "  - id: q1\n")

    issue = only_issue(workspace)

    assert (issue.file, issue.line, issue.field) == (path, 20, "questions[1].id")
    assert issue.message == "duplicate question id 'q1'"


def test_duplicate_lesson_id_across_files(workspace: Workspace) -> None:
    copy = workspace.course / "03-copy.yaml"
    copy.write_text((workspace.course / LESSON_1).read_text(encoding="utf-8"), encoding="utf-8")

    issue = only_issue(workspace)

    assert (issue.file, issue.line, issue.field) == (copy, 1, "id")
    assert "duplicate lesson id 'know-your-users'" in issue.message
    assert LESSON_1 in issue.message


def test_listed_lesson_without_file(workspace: Workspace) -> None:
    path = workspace.edit("course.yaml", "  - open-data\n", "  - open-data\n  - ghost\n")

    issue = only_issue(workspace)

    assert (issue.file, issue.line, issue.field) == (path, 9, "lessons[2]")
    assert "lesson 'ghost' has no file" in issue.message


def test_file_whose_lesson_is_not_listed(workspace: Workspace) -> None:
    workspace.edit("course.yaml", "  - open-data\n", "")

    issue = only_issue(workspace)

    assert (issue.file.name, issue.line, issue.field) == ("02-open-data.yaml", 1, "id")
    assert "'open-data' is not listed" in issue.message


def test_unknown_prerequisite_course(workspace: Workspace) -> None:
    path = workspace.edit("course.yaml", "lessons:\n", "requires: [basics]\nlessons:\n")

    issue = only_issue(workspace)

    assert (issue.file, issue.line, issue.field) == (path, 6, "requires[0]")
    assert issue.message == "unknown prerequisite course 'basics'"
    courses, _ = scan_courses(workspace.lessons)
    assert courses == {}  # the course with a bad prerequisite is not loaded


def test_known_prerequisite_course_loads(workspace: Workspace) -> None:
    other = workspace.lessons / "advanced"
    other.mkdir()
    (other / "course.yaml").write_text(
        "id: advanced\ntitle: Advanced\nlocales: [en]\nlessons: [deep]\nrequires: [civic]\n",
        encoding="utf-8",
    )
    (other / "deep.yaml").write_text(
        "id: deep\ntitle: Deep\nbody: Text.\nquestions:\n"
        "  - id: q\n    kind: free_text\n    prompt: Why?\n",
        encoding="utf-8",
    )

    courses = load_courses(workspace.lessons)

    assert courses["advanced"].course.requires == ["civic"]


def test_one_invalid_file_loads_nothing_of_its_course(workspace: Workspace) -> None:
    workspace.edit("02-open-data.yaml", "kind: rating", "kind: stars")

    with pytest.raises(LessonValidationError) as caught:
        load_course(workspace.course)
    courses, issues = scan_courses(workspace.lessons)

    assert courses == {}
    assert [i.field for i in issues] == [i.field for i in caught.value.issues]
    assert (issues[0].line, issues[0].field) == (18, "questions[1].kind")
    assert issues[0].message.startswith("unknown kind 'stars': use one of")


def test_every_issue_of_a_course_is_reported_at_once(workspace: Workspace) -> None:
    workspace.edit(LESSON_1, "    answer: 2\n", "    answer: 9\n")
    workspace.edit("02-open-data.yaml", "title: Open data", "title: Open data\ncolour: red")

    with pytest.raises(LessonValidationError) as caught:
        load_courses(workspace.lessons)

    fields = sorted(issue.field for issue in caught.value.issues)
    assert fields == ["colour", "questions[0].answer"]


def test_long_body_is_a_warning_not_an_error(workspace: Workspace) -> None:
    workspace.edit(
        "02-open-data.yaml",
        "body: Publishing data in open formats lets others reuse it.",
        "body: " + "Open data helps. " * 40,
    )

    civic = load_courses(workspace.lessons)["civic"]

    [warning] = civic.warnings
    assert (warning.file.name, warning.line, warning.field) == ("02-open-data.yaml", 4, "body")
    assert "aim for at most 480" in warning.message


def test_empty_file_is_an_error(workspace: Workspace) -> None:
    empty = workspace.course / "03-empty.yaml"
    empty.write_text("", encoding="utf-8")

    issue = only_issue(workspace)

    assert issue.file == empty
    assert "expected a mapping" in issue.message


def test_missing_lessons_dir_is_reported(tmp_path: Path) -> None:
    _, issues = scan_courses(tmp_path / "nowhere")

    assert issues[0].message == "not a directory"


def test_prerequisite_cycle_is_an_error(workspace: Workspace) -> None:
    other = workspace.lessons / "advanced"
    other.mkdir()
    (other / "course.yaml").write_text(
        "id: advanced\ntitle: Advanced\nlocales: [en]\nlessons: [deep]\nrequires: [civic]\n",
        encoding="utf-8",
    )
    (other / "deep.yaml").write_text(
        "id: deep\ntitle: Deep\nbody: Text.\nquestions:\n"
        "  - id: q\n    kind: free_text\n    prompt: Why?\n",
        encoding="utf-8",
    )
    workspace.edit("course.yaml", "lessons:\n", "requires: [advanced]\nlessons:\n")

    courses, issues = scan_courses(workspace.lessons)

    assert courses == {}
    assert sorted((i.file.parent.name, i.field) for i in issues) == [
        ("advanced", "requires[0]"),
        ("civic", "requires[0]"),
    ]
    assert "cycle" in issues[0].message


def test_unknown_locale_is_an_error(workspace: Workspace) -> None:
    path = workspace.edit("course.yaml", "locales: [en, fr, ar]", "locales: [en, fr, ar, qq_ZZ]")

    issue = only_issue(workspace)

    assert (issue.file, issue.line, issue.field) == (path, 5, "locales[3]")
    assert issue.message == "unknown locale 'qq_ZZ'"
