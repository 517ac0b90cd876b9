"""Course and lesson models: the YAML format, validated with pydantic.

Text fields hold the source-locale text; translations come from gettext catalogs
(one domain per course), looked up with `msgctxt` = `Lesson.context(...)`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
BODY_TARGET_CHARS = 480  # three GSM-7 segments of 153 + a little headroom is lost to joins


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

    @model_validator(mode="after")
    def _answer_in_range(self) -> SingleChoice:
        if not 1 <= self.answer <= len(self.options):
            raise ValueError(
                f"answer {self.answer} is out of range: there are {len(self.options)} options"
            )
        return self


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

    @model_validator(mode="after")
    def _answers_in_range(self) -> MultipleSelect:
        for answer in self.answers:
            if not 1 <= answer <= len(self.options):
                raise ValueError(
                    f"answer {answer} is out of range: there are {len(self.options)} options"
                )
        if len(set(self.answers)) != len(self.answers):
            raise ValueError("answers lists an option twice")
        return self


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
    questions: list[Question] = Field(min_length=1, max_length=3)

    @model_validator(mode="after")
    def _unique_question_ids(self) -> Lesson:
        seen: set[str] = set()
        for question in self.questions:
            if question.id in seen:
                raise ValueError(f"duplicate question id {question.id!r}")
            seen.add(question.id)
        return self

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

    @model_validator(mode="after")
    def _consistent(self) -> Course:
        if self.source_locale not in self.locales:
            raise ValueError(f"source_locale {self.source_locale!r} is not in locales")
        duplicates = {x for x in self.lessons if self.lessons.count(x) > 1}
        if duplicates:
            raise ValueError(f"lessons lists {sorted(duplicates)} more than once")
        return self
