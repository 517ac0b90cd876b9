"""Load and validate courses from YAML, mapping every error to `file:line: field: message`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.i18n import parse_locale
from bot.lessons.models import BODY_TARGET_CHARS, Course, Lesson, LessonRole

COURSE_FILE = "course.yaml"
FieldPath = tuple[str | int, ...]
RESERVED_LESSON_IDS = frozenset({"course"})  # "course/title" is the course's own msgctxt
M = TypeVar("M", bound=BaseModel)
_TOP_LEVEL_ID = re.compile(r"^id:\s*[\"']?([a-z0-9][a-z0-9-]*)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class LessonIssue:
    """One problem in a course file, located by file, line and field path."""

    file: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class LessonValidationError(Exception):
    """Course files are invalid; `issues` names each file, line and field."""

    def __init__(self, issues: Sequence[LessonIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Where each field of one YAML file is: field path -> 1-based line."""

    file: Path
    lines: Mapping[FieldPath, int]

    def line(self, path: FieldPath) -> int:
        """The line of `path`, or of its nearest enclosing field that is in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


@dataclass(frozen=True, slots=True)
class LoadedCourse:
    """A validated course with its lessons in course order and where each came from."""

    course: Course
    lessons: dict[str, Lesson]
    files: dict[str, Path]  # lesson id -> file
    sources: dict[str, SourceMap]  # lesson id -> field lines; "course" -> course.yaml
    directory: Path
    warnings: list[LessonIssue] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The course id, which is also its gettext domain."""
        return self.course.id

    @property
    def course_source(self) -> SourceMap:
        """Field lines of course.yaml."""
        return self.sources["course"]

    def role(self, lesson_id: str) -> LessonRole:
        """What a listed lesson is for: as course.yaml marks it, else as its `type` says."""
        course = self.course
        if lesson_id == course.pre_assessment:
            return "pre_assessment"
        if lesson_id == course.post_assessment:
            return "post_assessment"
        if lesson_id in course.surveys:
            return "survey"
        lesson = self.lessons.get(lesson_id)
        return "lesson" if lesson is None else lesson.type

    def teaching_lessons(self) -> list[str]:
        """The lessons that count towards completing the course, in order."""
        return [x for x in self.lessons if self.role(x) == "lesson"]

    def measuring_lessons(self) -> list[str]:
        """The assessments and surveys, counted on their own, in order."""
        return [x for x in self.lessons if self.role(x) != "lesson"]

    def assessments(self) -> list[str]:
        """The assessments, whose answers stay out of the quiz score."""
        return [x for x in self.lessons if self.lessons[x].type == "assessment"]


def format_path(path: Iterable[str | int]) -> str:
    """Render a field path the way authors read it: `questions[0].options[1].text`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def read_yaml(file: Path, text: str | None = None) -> tuple[Any, SourceMap]:
    """Parse one YAML file into plain data plus the line of every field; errors name the line."""
    if text is None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LessonValidationError([LessonIssue(file, 0, "", f"cannot read: {exc}")]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = exc.problem or exc.context or "invalid YAML"
        raise LessonValidationError([LessonIssue(file, line, "", f"bad YAML: {problem}")]) from exc
    except yaml.YAMLError as exc:
        raise LessonValidationError([LessonIssue(file, 0, "", f"bad YAML: {exc}")]) from exc
    lines: dict[FieldPath, int] = {}
    if node is None:
        return None, SourceMap(file, lines)
    constructor = yaml.SafeLoader("")
    issues: list[LessonIssue] = []
    data = _to_python(node, (), lines, constructor, file, issues)
    if issues:
        raise LessonValidationError(issues)
    return data, SourceMap(file, lines)


def _to_python(
    node: yaml.Node,
    path: FieldPath,
    lines: dict[FieldPath, int],
    constructor: yaml.SafeLoader,
    file: Path,
    issues: list[LessonIssue],
) -> Any:
    # Build plain data ourselves so that each key and item keeps its line.
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                issues.append(
                    LessonIssue(file, key_node.start_mark.line + 1, format_path(path), "bad key")
                )
                continue
            child = (*path, str(key))
            if key in result:
                issues.append(
                    LessonIssue(
                        file, key_node.start_mark.line + 1, format_path(child), "duplicate key"
                    )
                )
            lines[child] = key_node.start_mark.line + 1
            result[str(key)] = _to_python(value_node, child, lines, constructor, file, issues)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(item, (*path, index), lines, constructor, file, issues)
            for index, item in enumerate(node.value)
        ]
    return constructor.construct_object(node, deep=True)


def validate_model(model: type[M], data: Any, source: SourceMap) -> M:
    """Validate `data` as `model`, mapping pydantic errors to located issues."""
    if not isinstance(data, dict):
        raise LessonValidationError(
            [LessonIssue(source.file, source.line(()), "", "expected a mapping of fields")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise LessonValidationError(
            [_issue(error, data, source) for error in exc.errors(include_url=False)]
        ) from exc


def _issue(error: Any, data: Any, source: SourceMap) -> LessonIssue:
    path = _data_path(tuple(error["loc"]), data)
    kind = error["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        path = (*path, "kind")
    name = str(path[-1]) if path else ""
    if kind == "union_tag_invalid":
        message = (
            f"unknown kind {error['ctx']['tag']!r}: use one of {error['ctx']['expected_tags']}"
        )
    elif kind == "union_tag_not_found":
        message = f"missing kind: use one of {error['ctx']['expected_tags']}"
    elif kind == "extra_forbidden":
        message = f"unknown field {name!r}"
    elif kind == "missing" and name == "answer":
        message = "missing: no correct option (add `answer`, the number of the right option)"
    elif kind == "missing" and name == "answers":
        message = "missing: no correct option (add `answers`, the numbers of the right options)"
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = error["msg"]
    return LessonIssue(source.file, source.line(path), format_path(path), message)


def _data_path(loc: tuple[Any, ...], data: Any) -> FieldPath:
    # pydantic puts the discriminator tag ("single_choice") into the location of a union
    # member; it is not a key of the YAML data, so drop it.
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict):
            if part not in node and node.get("kind") == part:
                continue
            path.append(str(part))
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            path.append(part)
            node = node[part] if 0 <= part < len(node) else None
        else:
            path.append(part if isinstance(part, int) else str(part))
            node = None
    return tuple(path)


def load_course(course_dir: Path) -> LoadedCourse:
    """Load one course directory; raise `LessonValidationError` listing every issue."""
    issues: list[LessonIssue] = []
    course_file = course_dir / COURSE_FILE
    course: Course | None = None
    course_source = SourceMap(course_file, {})
    if not course_file.is_file():
        issues.append(LessonIssue(course_file, 0, "", f"missing {COURSE_FILE}"))
    else:
        try:
            course_data, course_source = read_yaml(course_file)
            course = validate_model(Course, course_data, course_source)
        except LessonValidationError as exc:
            issues.extend(exc.issues)

    lessons: dict[str, Lesson] = {}
    files: dict[str, Path] = {}
    sources: dict[str, SourceMap] = {"course": course_source}
    broken_ids: set[str] = set()  # ids of lesson files that failed: not also "missing"
    for file in sorted(course_dir.glob("*.yaml")):
        if file.name == COURSE_FILE:
            continue
        data: Any = None
        try:
            data, source = read_yaml(file)
            issues.extend(_duplicate_question_ids(data, source))
            lesson = validate_model(Lesson, data, source)
        except LessonValidationError as exc:
            issues.extend(exc.issues)
            broken_ids.update(_declared_id(file, data))
            continue
        id_line = source.line(("id",))
        if lesson.id in RESERVED_LESSON_IDS:
            issues.append(LessonIssue(file, id_line, "id", f"{lesson.id!r} is a reserved id"))
        elif lesson.id in lessons:
            issues.append(
                LessonIssue(
                    file,
                    id_line,
                    "id",
                    f"duplicate lesson id {lesson.id!r}: also in {files[lesson.id]}",
                )
            )
        else:
            lessons[lesson.id] = lesson
            files[lesson.id] = file
            sources[lesson.id] = source

    if course is not None:
        issues.extend(_locale_issues(course, course_source))
        issues.extend(_listing_issues(course, course_source, lessons, files, sources, broken_ids))
        issues.extend(_role_issues(course, course_source, lessons, sources))
    issues = _without_duplicate_reports(issues)
    if issues:
        raise LessonValidationError(issues)
    assert course is not None  # no issues means course.yaml validated
    ordered = {lesson_id: lessons[lesson_id] for lesson_id in course.lessons}
    return LoadedCourse(
        course=course,
        lessons=ordered,
        files={lesson_id: files[lesson_id] for lesson_id in course.lessons},
        sources={"course": course_source} | {i: sources[i] for i in course.lessons},
        directory=course_dir,
        warnings=_warnings(ordered, sources),
    )


_ROLE_TYPES = {"pre_assessment": "assessment", "post_assessment": "assessment", "survey": "survey"}


def _role_issues(
    course: Course,
    source: SourceMap,
    lessons: Mapping[str, Lesson],
    sources: Mapping[str, SourceMap],
) -> list[LessonIssue]:
    """Marked lessons have the matching type; the post-assessment repeats the pre's items."""
    issues = []
    for lesson_id in course.lessons:
        lesson = lessons.get(lesson_id)
        marks = [
            role
            for role, marked in (
                ("pre_assessment", lesson_id == course.pre_assessment),
                ("post_assessment", lesson_id == course.post_assessment),
                ("survey", lesson_id in course.surveys),
            )
            if marked
        ]
        if lesson is None or not marks:
            continue
        expected = _ROLE_TYPES[marks[0]]
        if len(marks) > 1 or lesson.type != expected:
            where = sources[lesson_id]
            message = (
                f"{COURSE_FILE} marks it as {' and '.join(marks)}: it needs type {expected}"
                if len(marks) == 1
                else f"{COURSE_FILE} marks it as {' and '.join(marks)}: choose one"
            )
            issues.append(LessonIssue(where.file, where.line(("type",)), "type", message))
    pre = lessons.get(course.pre_assessment or "")
    post = lessons.get(course.post_assessment or "")
    if course.post_assessment is not None and course.pre_assessment is None:
        issues.append(
            LessonIssue(
                source.file,
                source.line(("post_assessment",)),
                "post_assessment",
                "a post_assessment needs a pre_assessment to compare with",
            )
        )
    if pre is not None and post is not None:
        mismatch = _item_mismatch(pre, post)
        if mismatch:
            where = sources[post.id]
            message = f"does not match pre-assessment {pre.id!r} item for item: {mismatch}"
            issues.append(LessonIssue(where.file, where.line(("questions",)), "questions", message))
    return issues


def _item_mismatch(pre: Lesson, post: Lesson) -> str | None:
    """Why two assessments' items differ (ids, kinds, options, answers), or None."""
    if len(pre.questions) != len(post.questions):
        return f"{len(post.questions)} questions, the pre-assessment has {len(pre.questions)}"
    for a, b in zip(pre.questions, post.questions, strict=True):
        if a.id != b.id or a.kind != b.kind:
            return f"question {b.id!r} ({b.kind}) where the pre-assessment has {a.id!r} ({a.kind})"
        if len(getattr(a, "options", ())) != len(getattr(b, "options", ())):
            return f"question {b.id!r} has a different number of options"
        if getattr(a, "answer", None) != getattr(b, "answer", None) or getattr(
            a, "answers", None
        ) != getattr(b, "answers", None):
            return f"question {b.id!r} has a different right answer"
    return None


def _locale_issues(course: Course, source: SourceMap) -> list[LessonIssue]:
    issues = []
    for index, locale in enumerate(course.locales):
        try:
            parse_locale(locale)
        except ValueError:
            path: FieldPath = ("locales", index)
            issues.append(
                LessonIssue(
                    source.file, source.line(path), format_path(path), f"unknown locale {locale!r}"
                )
            )
    return issues


def _declared_id(file: Path, data: Any) -> set[str]:
    """The lesson id a broken file declares, read from its text when its YAML is invalid."""
    if isinstance(data, dict):
        return {data["id"]} if isinstance(data.get("id"), str) else set()
    try:
        match = _TOP_LEVEL_ID.search(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return set()
    return {match.group(1)} if match else set()


def _duplicate_question_ids(data: Any, source: SourceMap) -> list[LessonIssue]:
    # Checked here as well as in the model, to point at the second occurrence's line.
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, list):
        return []
    seen: set[Any] = set()
    issues = []
    for index, question in enumerate(questions):
        qid = question.get("id") if isinstance(question, dict) else None
        if qid is None:
            continue
        if qid in seen:
            path: FieldPath = ("questions", index, "id")
            message = f"duplicate question id {qid!r}"
            issues.append(LessonIssue(source.file, source.line(path), format_path(path), message))
        seen.add(qid)
    return issues


def _without_duplicate_reports(issues: list[LessonIssue]) -> list[LessonIssue]:
    located = {
        i.file for i in issues if i.field.endswith(".id") and "duplicate question" in i.message
    }
    return [
        i
        for i in issues
        if not (
            i.file in located and i.field in ("", "questions") and "duplicate question" in i.message
        )
    ]


def _listing_issues(
    course: Course,
    course_source: SourceMap,
    lessons: dict[str, Lesson],
    files: dict[str, Path],
    sources: dict[str, SourceMap],
    broken_ids: set[str],
) -> list[LessonIssue]:
    issues = []
    for index, lesson_id in enumerate(course.lessons):
        if lesson_id not in lessons and lesson_id not in broken_ids:
            path: FieldPath = ("lessons", index)
            issues.append(
                LessonIssue(
                    course_source.file,
                    course_source.line(path),
                    format_path(path),
                    f"lesson {lesson_id!r} has no file in {course_source.file.parent}",
                )
            )
    listed = set(course.lessons)
    for lesson_id, file in files.items():
        if lesson_id not in listed:
            issues.append(
                LessonIssue(
                    file,
                    sources[lesson_id].line(("id",)),
                    "id",
                    f"lesson {lesson_id!r} is not listed in {course_source.file}",
                )
            )
    return issues


def _warnings(lessons: dict[str, Lesson], sources: dict[str, SourceMap]) -> list[LessonIssue]:
    warnings = []
    for lesson_id, lesson in lessons.items():
        if len(lesson.body) > BODY_TARGET_CHARS:
            source = sources[lesson_id]
            warnings.append(
                LessonIssue(
                    source.file,
                    source.line(("body",)),
                    "body",
                    f"{len(lesson.body)} characters: aim for at most {BODY_TARGET_CHARS} "
                    "so the lesson fits in 3 SMS segments",
                )
            )
    return warnings


def scan_courses(lessons_dir: Path) -> tuple[dict[str, LoadedCourse], list[LessonIssue]]:
    """Load every course under `lessons_dir`; return the valid ones and every issue found."""
    courses: dict[str, LoadedCourse] = {}
    issues: list[LessonIssue] = []
    if not lessons_dir.is_dir():
        return courses, [LessonIssue(lessons_dir, 0, "", "not a directory")]
    for course_dir in sorted(p for p in lessons_dir.iterdir() if (p / COURSE_FILE).is_file()):
        try:
            loaded = load_course(course_dir)
        except LessonValidationError as exc:
            issues.extend(exc.issues)
            continue
        if loaded.id in courses:
            issues.append(
                LessonIssue(
                    loaded.course_source.file,
                    loaded.course_source.line(("id",)),
                    "id",
                    f"duplicate course id {loaded.id!r}: also in {courses[loaded.id].directory}",
                )
            )
            continue
        courses[loaded.id] = loaded
    prerequisite_issues = _prerequisite_issues(courses, known=_declared_ids(lessons_dir))
    issues.extend(prerequisite_issues)
    # A course with a bad prerequisite is invalid as a whole, like any other bad file.
    bad_files = {issue.file for issue in prerequisite_issues}
    valid = {i: c for i, c in courses.items() if c.course_source.file not in bad_files}
    return valid, issues


def _declared_ids(lessons_dir: Path) -> set[str]:
    # A prerequisite whose own files are broken is reported there, not as "unknown".
    ids = set()
    for course_file in lessons_dir.glob(f"*/{COURSE_FILE}"):
        try:
            data, _ = read_yaml(course_file)
        except LessonValidationError:
            continue
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            ids.add(data["id"])
    return ids


def _prerequisite_issues(courses: dict[str, LoadedCourse], known: set[str]) -> list[LessonIssue]:
    issues = []
    for loaded in courses.values():
        source = loaded.course_source
        for index, required in enumerate(loaded.course.requires):
            path: FieldPath = ("requires", index)
            if required == loaded.id:
                message = "a course cannot require itself"
            elif required not in known:
                message = f"unknown prerequisite course {required!r}"
            elif loaded.id in _all_requirements(required, courses):
                message = f"prerequisites form a cycle: {required!r} requires {loaded.id!r}"
            else:
                continue
            issues.append(LessonIssue(source.file, source.line(path), format_path(path), message))
    return issues


def _all_requirements(course_id: str, courses: dict[str, LoadedCourse]) -> set[str]:
    """Every course `course_id` requires, directly or through others."""
    found: set[str] = set()
    pending = [course_id]
    while pending:
        current = courses.get(pending.pop())
        for required in current.course.requires if current else ():
            if required not in found:
                found.add(required)
                pending.append(required)
    return found


def load_courses(lessons_dir: Path) -> dict[str, LoadedCourse]:
    """Load every course under `lessons_dir`; raise `LessonValidationError` on any issue."""
    courses, issues = scan_courses(lessons_dir)
    if issues:
        raise LessonValidationError(issues)
    return courses


def teaching_by_course(courses: Mapping[str, LoadedCourse]) -> dict[str, frozenset[str]]:
    """Each course's teaching lessons: what completing a course counts (bot.store.rollups)."""
    return {
        course_id: frozenset(course.teaching_lessons()) for course_id, course in courses.items()
    }
