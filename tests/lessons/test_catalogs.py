"""Catalog workflow (extract, update, compile) and run-time translation lookup."""

from __future__ import annotations

from gettext import GNUTranslations
from pathlib import Path

from babel.messages.pofile import read_po, write_po

from bot.lessons import catalogs
from bot.lessons.catalogs import CourseTranslations, po_path, read_catalog
from bot.lessons.loader import load_courses
from bot.lessons.models import SingleChoice, TrueFalse
from tests.lessons.conftest import Workspace

CODE = Path(__file__).parent / "fixtures" / "code"


def translations(workspace: Workspace) -> CourseTranslations:
    return CourseTranslations(load_courses(workspace.lessons)["civic"], workspace.locales)


def edit_po(path: Path, context: str, *, string: str | None = None, fuzzy: bool = False) -> None:
    with path.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if message.context == context:
            if string is not None:
                message.string = string
            if fuzzy:
                message.flags.add("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, catalog)


def test_extract_writes_course_and_ui_templates(workspace: Workspace, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "ui.py").write_text(
        'def hello(ui):\n    return ui.gettext("Welcome!"), _("Bye"), N_("Later")\n',
        encoding="utf-8",
    )

    written = catalogs.extract(workspace.lessons, workspace.locales, [code], root=tmp_path)

    assert sorted(p.name for p in written) == ["civic.pot", "messages.pot"]
    course_pot = read_catalog(workspace.locales / "civic.pot")
    title = course_pot.get("Know your users", context="know-your-users/title")
    assert title is not None
    assert title.locations == [("lessons/civic/01-know-your-users.yaml", 2)]
    ui_pot = read_catalog(workspace.locales / "messages.pot")
    assert {m.id for m in ui_pot if m.id} == {"Welcome!", "Bye", "Later"}
    # Running again changes nothing: no churn from dates.
    assert catalogs.extract(workspace.lessons, workspace.locales, [code], root=tmp_path) == []


def test_update_makes_a_changed_source_string_fuzzy(workspace: Workspace) -> None:
    catalogs.extract(workspace.lessons, workspace.locales, [])
    catalogs.update(workspace.lessons, workspace.locales, ui_locales=())
    assert translations(workspace).is_lesson_complete("know-your-users", "fr")

    workspace.edit("01-know-your-users.yaml", "Write the software", "Write the software at once")
    catalogs.extract(workspace.lessons, workspace.locales, [])
    catalogs.update(workspace.lessons, workspace.locales, ui_locales=())

    fr = read_catalog(po_path(workspace.locales, "fr", "civic"))
    message = fr.get("Write the software at once", context="know-your-users/q1/option.1")
    assert message is not None
    assert message.fuzzy
    assert message.string == "Écrire le logiciel"
    assert '#| msgid "Write the software"' in po_path(workspace.locales, "fr", "civic").read_text()
    assert fr.get("Write the software", context="know-your-users/q1/option.1") is None
    assert not fr.obsolete
    status = translations(workspace)
    assert not status.is_lesson_complete("know-your-users", "fr")
    assert status.is_lesson_complete("open-data", "fr")
    assert status.counts("fr") == catalogs.TranslationCounts(translated=25, fuzzy=1, missing=0)


def test_update_creates_catalogs_for_new_locales(workspace: Workspace) -> None:
    workspace.edit("course.yaml", "locales: [en, fr, ar]", "locales: [en, fr, ar, sw]")
    (workspace.locales / "messages.pot").unlink(missing_ok=True)
    catalogs.extract(workspace.lessons, workspace.locales, [])

    written = catalogs.update(workspace.lessons, workspace.locales, ui_locales=("en", "sw"))

    assert po_path(workspace.locales, "sw", "civic") in written
    assert po_path(workspace.locales, "sw", "messages") in written
    counts = translations(workspace).counts("sw")
    assert (counts.translated, counts.fuzzy, counts.missing) == (0, 0, 26)
    assert translations(workspace).counts("fr").complete


def test_compile_leaves_fuzzy_out(workspace: Workspace) -> None:
    fr_po = po_path(workspace.locales, "fr", "civic")
    edit_po(fr_po, "know-your-users/title", fuzzy=True)

    written = catalogs.compile(workspace.locales)

    assert fr_po.with_suffix(".mo") in written
    with fr_po.with_suffix(".mo").open("rb") as handle:
        compiled = GNUTranslations(handle)
    assert compiled.pgettext("know-your-users/title", "Know your users") == "Know your users"
    assert compiled.pgettext("open-data/title", "Open data") == "Données ouvertes"


def test_missing_string_makes_the_lesson_incomplete(workspace: Workspace) -> None:
    edit_po(po_path(workspace.locales, "ar", "civic"), "open-data/useful/low_label", string="")

    status = translations(workspace)

    assert not status.is_lesson_complete("open-data", "ar")
    assert status.is_lesson_complete("know-your-users", "ar")
    assert status.counts("ar").missing == 1
    [gap] = status.gap_issues("ar")
    assert (gap.file.name, gap.line, gap.field) == (
        "02-open-data.yaml",
        20,
        "questions[1].low_label",
    )


def test_source_locale_is_always_complete(workspace: Workspace) -> None:
    status = translations(workspace)

    assert status.is_lesson_complete("open-data", "en")
    assert status.counts("en").percent == 100.0


def test_pick_locale_falls_back_along_the_chain(workspace: Workspace) -> None:
    workspace.edit("course.yaml", "locales: [en, fr, ar]", "locales: [en, fr, ar, pt, pt_BR]")
    catalogs.extract(workspace.lessons, workspace.locales, [])
    catalogs.update(workspace.lessons, workspace.locales, ui_locales=())
    # pt is fully "translated" (the French text is good enough for a test); pt_BR has all
    # strings but one fuzzy.
    for locale in ("pt", "pt_BR"):
        target = po_path(workspace.locales, locale, "civic")
        target.write_bytes(
            po_path(workspace.locales, "fr", "civic").read_bytes().replace(b"Language: fr", b"")
        )
    edit_po(po_path(workspace.locales, "pt_BR", "civic"), "know-your-users/q2/prompt", fuzzy=True)
    status = translations(workspace)
    chain = ["pt_BR", "pt", "en"]

    assert status.pick_locale("open-data", chain) == "pt_BR"
    assert status.pick_locale("know-your-users", chain) == "pt"
    edit_po(po_path(workspace.locales, "pt", "civic"), "know-your-users/title", string="")
    assert translations(workspace).pick_locale("know-your-users", chain) == "en"
    assert translations(workspace).pick_locale("know-your-users", ["de", "xx"]) == "en"


def test_localize_translates_every_field_never_from_fuzzy(workspace: Workspace) -> None:
    edit_po(po_path(workspace.locales, "fr", "civic"), "know-your-users/q2/prompt", fuzzy=True)
    status = translations(workspace)
    lesson = status.loaded.lessons["know-your-users"]

    french = status.localize(lesson, "fr")

    assert french.title == "Connaître ses usagers"
    assert french.image is not None and french.image.alt.startswith("Une agente")
    question = french.questions[0]
    assert isinstance(question, SingleChoice)
    assert question.options[0].text == "Écrire le logiciel"
    assert question.options[1].feedback == "Exact. Leurs besoins passent en premier."
    assert question.answer == 2  # structure is untouched
    true_false = french.questions[1]
    assert isinstance(true_false, TrueFalse)
    assert true_false.prompt == lesson.questions[1].prompt  # fuzzy: source text
    assert true_false.feedback.correct == "Oui, l’observation révèle les problèmes."
    assert status.localize(lesson, "en") is lesson
    assert status.course_title("fr") == "Les bases de la civic tech"
    assert status.course_title("de") == "Civic tech basics"


def test_translations_read_po_files_not_stale_mo(workspace: Workspace) -> None:
    catalogs.compile(workspace.locales)
    edit_po(po_path(workspace.locales, "fr", "civic"), "open-data/title", string="Open data FR")

    assert translations(workspace).translate("open-data/title", "Open data", "fr") == "Open data FR"
