"""Translatable strings of courses and lessons, and the Babel extractor built on them."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bot.lessons.loader import (
    FieldPath,
    SourceMap,
    read_yaml,
    validate_model,
)
from bot.lessons.models import (
    BODY_TARGET_CHARS,
    Course,
    Lesson,
    MultipleSelect,
    Rating,
    SingleChoice,
    TrueFalse,
)

COURSE_CONTEXT = "course"


@dataclass(frozen=True, slots=True)
class TextField:
    """One translatable string: where it sits in the model, its msgctxt and source text."""

    path: FieldPath
    context: str
    text: str
    comment: str | None = None


def lesson_fields(lesson: Lesson) -> Iterator[TextField]:
    """Every translatable string of a lesson, in file order."""
    ctx = lesson.context
    lid = lesson.id
    yield TextField(("title",), ctx(lid, "title"), lesson.title, "Lesson title")
    yield TextField(
        ("body",),
        ctx(lid, "body"),
        lesson.body,
        f"SMS: keep the lesson under {BODY_TARGET_CHARS} characters (3 segments)",
    )
    if lesson.image is not None:
        yield TextField(
            ("image", "alt"),
            ctx(lid, "image.alt"),
            lesson.image.alt,
            "Describes the image; sent instead of it by SMS",
        )
    for index, question in enumerate(lesson.questions):
        base: FieldPath = ("questions", index)
        qid = question.id
        yield TextField(
            (*base, "prompt"), ctx(lid, qid, "prompt"), question.prompt, "Quiz question"
        )
        if isinstance(question, SingleChoice | MultipleSelect):
            for number, option in enumerate(question.options, start=1):
                at: FieldPath = (*base, "options", number - 1)
                yield TextField(
                    (*at, "text"),
                    ctx(lid, qid, f"option.{number}"),
                    option.text,
                    f"Answer option {number}: shown on a button, keep it short",
                )
                if option.feedback is not None:
                    yield TextField(
                        (*at, "feedback"),
                        ctx(lid, qid, f"feedback.{number}"),
                        option.feedback,
                        f"Feedback when the learner picks option {number}",
                    )
        if isinstance(question, TrueFalse | MultipleSelect):
            feedback = question.feedback
            for verdict, text in (("correct", feedback.correct), ("incorrect", feedback.incorrect)):
                if text is not None:
                    yield TextField(
                        (*base, "feedback", verdict),
                        ctx(lid, qid, f"feedback.{verdict}"),
                        text,
                        f"Feedback for an {verdict} answer"
                        if verdict == "incorrect"
                        else "Feedback for a correct answer",
                    )
        if isinstance(question, Rating):
            for name, label in (
                ("low_label", question.low_label),
                ("high_label", question.high_label),
            ):
                if label is not None:
                    yield TextField(
                        (*base, name),
                        ctx(lid, qid, name),
                        label,
                        "What a rating of 1 means" if name == "low_label" else "What 5 means",
                    )


def course_fields(course: Course) -> Iterator[TextField]:
    """The translatable strings of course.yaml."""
    yield TextField(("title",), f"{COURSE_CONTEXT}/title", course.title, "Course title")
    if course.description is not None:
        yield TextField(
            ("description",), f"{COURSE_CONTEXT}/description", course.description, "Course summary"
        )


def file_fields(file: Path, text: str) -> tuple[list[TextField], SourceMap]:
    """Validate one course.yaml or lesson file and list its strings with their lines."""
    data, source = read_yaml(file, text)
    is_course = file.name == "course.yaml" or (isinstance(data, dict) and "locales" in data)
    if is_course:
        return list(course_fields(validate_model(Course, data, source))), source
    return list(lesson_fields(validate_model(Lesson, data, source))), source


def extract_lessons(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str, tuple[str, str], list[str]]]:
    """Babel extractor for course and lesson YAML: `pgettext(msgctxt, msgid)` per string."""
    encoding = str(options.get("encoding", "utf-8"))
    name = getattr(fileobj, "name", None)
    file = Path(name if isinstance(name, str) else "lesson.yaml")
    # An invalid file raises LessonValidationError: never yield half a catalog.
    fields, source = file_fields(file, fileobj.read().decode(encoding))
    for text_field in fields:
        comments = [text_field.comment] if text_field.comment else []
        line = source.line(text_field.path)
        yield line, "pgettext", (text_field.context, text_field.text), comments
