"""Course and lesson models: the YAML format, validated with pydantic.

Text fields hold the source-locale text; translations come from gettext catalogs
(one domain per course), looked up with `msgctxt` = `Lesson.context(...)`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PositiveInt,
    ValidationInfo,
    field_validator,
)

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
# SMS segments a lesson may cost before `lessons check` warns: one number for every locale, or
# per locale with an optional "default", e.g. {default: 8, ar: 18}.
SegmentBudget = PositiveInt | dict[str, PositiveInt]
# What a lesson is for; see LoadedCourse.role.
LessonRole = Literal["lesson", "pre_assessment", "post_assessment", "assessment", "survey"]
BODY_TARGET_CHARS = 480  # three GSM-7 segments of 153 + a little headroom is lost to joins


def _check_option_number(answer: int, info: ValidationInfo) -> None:
    """Reject a 1-based option number that names no option (`options` is validated first)."""
    options = info.data.get("options")
    if options is not None and not 1 <= answer <= len(options):
        raise ValueError(f"answer {answer} is out of range: there are {len(options)} options")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageSpec(_Strict):
    """An image sent with the lesson; SMS sends the alt text instead."""

    url: HttpUrl
    alt: str = Field(min_length=1)


class Option(_Strict):
    """One answer option, with feedback shown when it is chosen."""

    text: str = Field(min_length=1, max_length=200)
    feedback: str | None = None


class SingleChoice(_Strict):
    """2 to 5 options, exactly one correct (1-based `answer`)."""

    id: Identifier
    kind: Literal["single_choice"]
    prompt: str = Field(min_length=1)
    options: list[Option] = Field(min_length=2, max_length=5)
    answer: int

    # A field validator (not a model validator) so the error is located at `answer`.
    @field_validator("answer")
    @classmethod
    def _answer_in_range(cls, answer: int, info: ValidationInfo) -> int:
        _check_option_number(answer, info)
        return answer


class TrueFalseFeedback(_Strict):
    """Feedback for a right and a wrong true/false answer."""

    correct: str | None = None
    incorrect: str | None = None


class TrueFalse(_Strict):
    """A statement the learner marks true or false."""

    id: Identifier
    kind: Literal["true_false"]
    prompt: str = Field(min_length=1)
    answer: bool
    feedback: TrueFalseFeedback = TrueFalseFeedback()


class MultipleSelect(_Strict):
    """2 to 5 options, one or more correct (1-based `answers`)."""

    id: Identifier
    kind: Literal["multiple_select"]
    prompt: str = Field(min_length=1)
    options: list[Option] = Field(min_length=2, max_length=5)
    answers: list[int] = Field(min_length=1)
    feedback: TrueFalseFeedback = TrueFalseFeedback()

    @field_validator("answers")
    @classmethod
    def _answers_in_range(cls, answers: list[int], info: ValidationInfo) -> list[int]:
        for answer in answers:
            _check_option_number(answer, info)
        if len(set(answers)) != len(answers):
            raise ValueError("answers lists an option twice")
        return answers


class Rating(_Strict):
    """A 1-to-5 survey rating, ungraded."""

    id: Identifier
    kind: Literal["rating"]
    prompt: str = Field(min_length=1)
    low_label: str | None = None  # what 1 means, e.g. "not useful"
    high_label: str | None = None  # what 5 means, e.g. "very useful"


class FreeText(_Strict):
    """A reflection question, ungraded."""

    id: Identifier
    kind: Literal["free_text"]
    prompt: str = Field(min_length=1)


Question = Annotated[
    SingleChoice | TrueFalse | MultipleSelect | Rating | FreeText, Field(discriminator="kind")
]


class Lesson(_Strict):
    """One micro-lesson: a short text, an optional image, and 1 to 3 questions."""

    id: Identifier
    type: Literal["lesson", "assessment", "survey"] = "lesson"
    title: str = Field(min_length=1, max_length=120)
    body: str = Field(min_length=1)
    image: ImageSpec | None = None
    # 1 to 3 questions; an assessment may hold 4 (its items and a confidence rating).
    questions: list[Question] = Field(min_length=1, max_length=4)
    sms_segment_budget: SegmentBudget | None = None  # overrides the course's

    @field_validator("questions")
    @classmethod
    def _unique_question_ids(
        cls, questions: list[Question], info: ValidationInfo
    ) -> list[Question]:
        seen: set[str] = set()
        for question in questions:
            if question.id in seen:
                raise ValueError(f"duplicate question id {question.id!r}")
            seen.add(question.id)
        if len(questions) > 3 and info.data.get("type") != "assessment":
            raise ValueError(f"{len(questions)} questions: a lesson has at most 3")
        return questions

    @staticmethod
    def context(lesson_id: str, *path: str) -> str:
        """The gettext msgctxt of one field, e.g. `user-centred-design/q1/option.2`."""
        return "/".join((lesson_id, *path))


class Course(_Strict):
    """A course: ordered lessons, declared locales, optional prerequisite courses."""

    id: Identifier
    title: str = Field(min_length=1)
    description: str | None = None
    source_locale: str = "en"
    locales: list[str] = Field(min_length=1)
    lessons: list[Identifier] = Field(min_length=1)  # lesson ids, in order
    requires: list[Identifier] = []  # prerequisite course ids: a learning pathway
    # WhatsApp content template SIDs per locale ("your lesson is ready"); see the channels issue.
    whatsapp_templates: dict[str, str] = {}
    sms_segment_budget: SegmentBudget | None = None  # per lesson; a lesson may set its own
    # Which listed lessons measure rather than teach. They are delivered in course order like
    # any lesson, but counted on their own: not in "lessons completed", not in the quiz score.
    pre_assessment: Identifier | None = None  # type assessment; asked before the lessons
    post_assessment: Identifier | None = None  # the same items as the pre-assessment, after
    surveys: list[Identifier] = []  # type survey: ratings and reflections

    @field_validator("locales")
    @classmethod
    def _source_declared(cls, locales: list[str], info: ValidationInfo) -> list[str]:
        source = info.data.get("source_locale")
        if source is not None and source not in locales:
            raise ValueError(f"source_locale {source!r} is not in locales")
        return locales

    @field_validator("lessons")
    @classmethod
    def _lessons_unique(cls, lessons: list[str]) -> list[str]:
        duplicates = {x for x in lessons if lessons.count(x) > 1}
        if duplicates:
            raise ValueError(f"lessons lists {sorted(duplicates)} more than once")
        return lessons

    @field_validator("pre_assessment", "post_assessment")
    @classmethod
    def _assessment_listed(cls, lesson_id: str | None, info: ValidationInfo) -> str | None:
        lessons = info.data.get("lessons")
        if lesson_id is not None and lessons is not None and lesson_id not in lessons:
            raise ValueError(f"{lesson_id!r} is not in lessons")
        return lesson_id

    @field_validator("surveys")
    @classmethod
    def _surveys_listed(cls, surveys: list[str], info: ValidationInfo) -> list[str]:
        lessons = info.data.get("lessons")
        unknown = [x for x in surveys if lessons is not None and x not in lessons]
        if unknown:
            raise ValueError(f"{unknown} not in lessons")
        return surveys
