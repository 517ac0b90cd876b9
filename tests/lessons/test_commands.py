"""The `lessons` command group through click's CliRunner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po
from click.testing import CliRunner, Result

from bot.lessons.check import CourseReport, check, format_report
from bot.lessons.commands import lessons
from tests.lessons.conftest import Workspace

LESSON_1 = "01-know-your-users.yaml"


def run(workspace: Workspace, *args: str) -> Result:
    dirs = ["--lessons-dir", str(workspace.lessons), "--locales-dir", str(workspace.locales)]
    return CliRunner().invoke(lessons, [*args, *dirs], catch_exceptions=False)


def test_check_passes_on_the_fixture_course(workspace: Workspace) -> None:
    result = run(workspace, "check")

    assert result.exit_code == 0, result.output
    assert "Course civic: Civic tech basics" in result.output
    assert "fr          26/26 100.0%       0        0" in result.output
    assert "know-your-users  GSM-7 4          GSM-7 4 x1.00    UCS-2 8 x2.00" in result.output
    assert "per learner      8                8 x1.00          16 x2.00" in result.output
    assert result.output.rstrip().endswith("0 error(s), 0 warning(s): OK")


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (LESSON_1, "    answer: 2\n", "    answer: [2\n", f"{LESSON_1}:20: bad YAML"),
        (
            LESSON_1,
            "    answer: 2\n",
            "    answer: 2\n    colour: red\n",
            "20: questions[0].colour",
        ),
        (LESSON_1, "    answer: 2\n", "", f"{LESSON_1}:10: questions[0].answer: missing"),
        (LESSON_1, "    answer: 2\n", "    answer: 4\n", "19: questions[0].answer: answer 4"),
        (LESSON_1, "  - id: q2\n", "  - id: q1\n", f"{LESSON_1}:20: questions[1].id: duplicate"),
        (
            "course.yaml",
            "  - open-data\n",
            "  - open-data\n  - gone\n",
            "course.yaml:9: lessons[2]",
        ),
    ],
    ids=[
        "bad-yaml",
        "unknown-field",
        "no-correct-option",
        "out-of-range",
        "duplicate-id",
        "no-file",
    ],
)
def test_check_fails_on_a_broken_copy(
    workspace: Workspace, file: str, old: str, new: str, expected: str
) -> None:
    workspace.edit(file, old, new)

    result = run(workspace, "check")

    assert result.exit_code == 1
    assert expected in result.output
    assert "FAILED" in result.output


def test_check_fails_on_a_missing_translation(workspace: Workspace) -> None:
    po = workspace.locales / "fr" / "LC_MESSAGES" / "civic.po"
    with po.open("rb") as handle:
        catalog = read_po(handle)
    message = catalog.get("What should you do first?", context="know-your-users/q1/prompt")
    assert message is not None
    message.string = ""
    with po.open("wb") as handle:
        write_po(handle, catalog)

    result = run(workspace, "check")

    assert result.exit_code == 1
    assert "fr          25/26  96.2%       0        1   INCOMPLETE" in result.output
    assert (
        f"{LESSON_1}:12: questions[0].prompt: missing fr translation "
        "(msgctxt 'know-your-users/q1/prompt'"
    ) in result.output
    assert "GSM-7 4*" in result.output  # fr falls back to English for the prompt


def test_check_accepts_a_single_course_path(workspace: Workspace) -> None:
    result = CliRunner().invoke(
        lessons,
        ["check", str(workspace.course), "--locales-dir", str(workspace.locales)],
        env={"LEARNBOT_LESSONS_DIR": str(workspace.lessons)},
    )

    assert result.exit_code == 0, result.output
    assert "1 course(s) checked" in result.output


def test_check_reports_the_long_body_warning(workspace: Workspace) -> None:
    workspace.edit(
        "02-open-data.yaml",
        "body: Publishing data in open formats lets others reuse it.",
        "body: " + "Data. " * 90,
    )

    result = run(workspace, "check")

    assert "Warnings (1):" in result.output
    assert "02-open-data.yaml:4: body: 539 characters" in result.output
    # The French catalog no longer matches the new body: an error, not only a warning.
    assert result.exit_code == 1


def test_extract_update_compile_round_trip(workspace: Workspace, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "hello.py").write_text('print(_("Hello"))\n', encoding="utf-8")

    extracted = run(workspace, "extract", "--code-dir", str(code))
    workspace.edit(LESSON_1, "title: Know your users", "title: Know your learners")
    run(workspace, "extract", "--code-dir", str(code))
    updated = run(workspace, "update")
    compiled = run(workspace, "compile")
    checked = run(workspace, "check")

    assert extracted.exit_code == 0 and "civic.pot" in extracted.output
    assert updated.exit_code == 0 and "fr/LC_MESSAGES/civic.po" in updated.output
    assert "sw/LC_MESSAGES/messages.po" in updated.output
    assert compiled.exit_code == 0
    assert (workspace.locales / "fr" / "LC_MESSAGES" / "civic.mo").is_file()
    assert checked.exit_code == 1
    assert "fr          25/26  96.2%       1        0   INCOMPLETE" in checked.output
    assert f"{LESSON_1}:2: title: fuzzy fr translation" in checked.output


def test_extract_refuses_an_invalid_course(workspace: Workspace) -> None:
    workspace.edit(LESSON_1, "    answer: 2\n", "    answer: 0\n")

    result = run(workspace, "extract", "--code-dir", str(workspace.lessons))

    assert result.exit_code == 1
    assert "questions[0].answer: answer 0 is out of range" in result.output
    assert not (workspace.locales / "civic.pot").exists()


def test_preview_sms_prints_each_segment(workspace: Workspace) -> None:
    result = run(
        workspace, "preview", "civic", "know-your-users", "--locale", "ar", "--channel", "sms"
    )

    assert result.exit_code == 0, result.output
    assert "Locale requested ar, delivered ar" in result.output
    assert "=== lesson, message 1: UCS-2, 3 segment(s) ===" in result.output
    assert "--- segment 1/3 (67 units) ---" in result.output
    assert "موظفة تستمع" in result.output or "موظفة تستمع إل" in result.output
    assert "Total: 8 SMS segment(s)" in result.output


def test_preview_telegram_shows_buttons_and_falls_back(workspace: Workspace) -> None:
    result = run(
        workspace,
        "preview",
        "civic",
        "know-your-users",
        "--locale",
        "pt-BR",
        "--channel",
        "telegram",
    )

    assert result.exit_code == 0, result.output
    assert "Locale requested pt_BR, delivered en (chain pt_BR > pt > en)" in result.output
    assert "[image https://example.org/users.png]" in result.output
    assert "[button 'Talk to the people who will use it' -> ans:2]" in result.output
    assert "=== question 2, message 1 ===" in result.output


def test_preview_names_unknown_course_and_lesson(workspace: Workspace) -> None:
    assert "unknown course 'nope'" in run(workspace, "preview", "nope", "x").output
    assert "has no lesson 'x'" in run(workspace, "preview", "civic", "x").output


def test_directories_default_to_settings(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace.lessons.parent)  # holds lessons/ and locales/

    result = CliRunner().invoke(lessons, ["check"], env={"LEARNBOT_LESSONS_DIR": "lessons"})

    assert result.exit_code == 0, result.output
    assert "Course civic" in result.output


def test_check_fails_on_a_folder_without_a_course(workspace: Workspace, tmp_path: Path) -> None:
    # Before: "0 course(s) checked, 0 error(s), 0 warning(s): OK" and exit 0.
    empty = tmp_path / "not-the-lessons"
    (empty / "notes").mkdir(parents=True)
    result = CliRunner().invoke(
        lessons, ["check", str(empty), "--locales-dir", str(workspace.locales)]
    )
    assert result.exit_code == 1, result.output
    assert f"{empty}: no course here: no course.yaml in it or its sub-folders" in result.output
    assert result.output.rstrip().endswith("FAILED")


# --- SMS cost: one count, budgets, and the shipped course's targets ----------------------------

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "lessons", ROOT / "locales")
TOTAL = re.compile(r"^Total: (\d+) SMS segment\(s\) in (\d+) message\(s\)$", re.MULTILINE)


@pytest.fixture(scope="module")
def shipped() -> CourseReport:
    """`lessons check` of the shipped course, with the default settings."""
    report = check(*SHIPPED)
    assert report.ok, format_report(report)
    (course,) = report.courses
    return course


def test_check_and_preview_count_the_same_for_every_shipped_lesson_and_locale(
    shipped: CourseReport,
) -> None:
    dirs = ["--lessons-dir", str(SHIPPED[0]), "--locales-dir", str(SHIPPED[1])]
    for (lesson_id, locale), cost in shipped.sms.items():
        result = CliRunner().invoke(
            lessons,
            [
                "preview",
                shipped.loaded.id,
                lesson_id,
                "--locale",
                locale,
                "--channel",
                "sms",
                *dirs,
            ],
            env={"LEARNBOT_SMS_FOLD": None, "LEARNBOT_SMS_MAX_SEGMENTS": None},
        )
        assert result.exit_code == 0, result.output
        found = TOTAL.search(result.output)
        assert found, result.output
        assert (int(found[1]), int(found[2])) == (cost.segments, cost.messages), (lesson_id, locale)
        headings = re.findall(r"^=== .*: (GSM-7|UCS-2), (\d+) segment", result.output, re.M)
        assert sum(int(n) for _, n in headings) == cost.segments


@pytest.mark.parametrize(
    ("locale", "limit"), [("fr", 1.4), ("es", 1.4), ("pt", 1.4), ("sw", 1.4), ("ar", 2.6)]
)
def test_every_shipped_lesson_costs_at_most_its_target_times_english(
    shipped: CourseReport, locale: str, limit: float
) -> None:
    ratios = {lesson: shipped.ratio(lesson, locale) for lesson in shipped.loaded.lessons}

    over = {lesson: ratio for lesson, ratio in ratios.items() if ratio is None or ratio > limit}
    assert not over, f"{locale}: over {limit} x en: {over}"


def test_shipped_latin_locales_go_as_gsm7_and_arabic_as_ucs2(shipped: CourseReport) -> None:
    encodings = {(locale, cost.encoding) for (_, locale), cost in shipped.sms.items()}

    assert {e for loc, e in encodings if loc != "ar"} == {"GSM-7"}
    assert {e for loc, e in encodings if loc == "ar"} == {"UCS-2"}


def test_check_counts_every_question_not_only_the_first(workspace: Workspace) -> None:
    # know-your-users: lesson 2 segments + two questions of 1 each; the first question alone
    # made it 3 before.
    result = run(workspace, "check")

    assert "know-your-users  GSM-7 4 " in result.output


def test_check_warns_over_the_course_budget_and_strict_fails(workspace: Workspace) -> None:
    workspace.edit(
        "course.yaml", "lessons:\n", "sms_segment_budget: {default: 4, ar: 7}\nlessons:\n"
    )

    result = run(workspace, "check")

    assert result.exit_code == 0, result.output
    warning = (
        f"{workspace.course / 'course.yaml'}:6: sms_segment_budget: know-your-users: ar: "
        "8 SMS segments, over the budget of 7"
    )
    assert warning in result.output
    assert "2 warning(s): OK" in result.output  # both lessons cost 8 in Arabic

    strict = run(workspace, "check", "--strict")

    assert strict.exit_code == 1
    assert "--strict: 2 warning(s) count as failures" in strict.output


def test_a_lesson_budget_overrides_the_course_budget(workspace: Workspace) -> None:
    workspace.edit("course.yaml", "lessons:\n", "sms_segment_budget: 3\nlessons:\n")
    workspace.edit(LESSON_1, "image:\n", "sms_segment_budget: 20\nimage:\n")

    result = run(workspace, "check", "--strict")

    assert result.exit_code == 1
    assert "know-your-users: en: 4 SMS segments" not in result.output
    assert (
        "course.yaml:6: sms_segment_budget: open-data: en: 4 SMS segments, over the budget of 3"
    ) in result.output
    workspace.edit(LESSON_1, "sms_segment_budget: 20\n", "sms_segment_budget: {default: 3}\n")
    lesson_own = run(workspace, "check")
    assert f"{LESSON_1}:6: sms_segment_budget: fr: 4 SMS segments, over the budget of 3" in (
        lesson_own.output
    )


def test_a_budget_that_is_not_a_positive_number_is_an_error(workspace: Workspace) -> None:
    workspace.edit("course.yaml", "lessons:\n", "sms_segment_budget: 0\nlessons:\n")

    result = run(workspace, "check")

    assert result.exit_code == 1
    assert "course.yaml:6: sms_segment_budget" in result.output
