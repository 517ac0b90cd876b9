"""Lessons and answers within a turn: deliver, ask, grade, record, move on."""

from __future__ import annotations

from bot.dialogue.answers import Reply, correct_answer, grade, parse_reply
from bot.dialogue.context import TurnContext
from bot.dialogue.keywords import Command
from bot.domain import EventType, OutboundMessage
from bot.i18n import UiTranslator, format_number, format_percent
from bot.lessons import render
from bot.lessons.models import FreeText, Lesson, MultipleSelect, Question, Rating, TrueFalse
from bot.store import repository as repo
from bot.store.repository import EnrollmentRecord

MAX_ATTEMPTS = 3  # wrong answers before the right one is shown and the lesson moves on


class LessonTurn(TurnContext):
    """The lesson steps of a turn."""

    def resume(self) -> None:
        """Show where the learner is: the open question, or what to send next."""
        enrollment = self.enrollment
        if enrollment is None:
            return
        if enrollment.lesson_id is not None and enrollment.question_index is not None:
            self.send_question(
                enrollment.course_id, enrollment.lesson_id, enrollment.question_index
            )
        elif enrollment.status == repo.ENROLLMENT_COMPLETED:
            self.say(self.tr.gettext("You have finished the course. Well done!"))
        elif enrollment.pacing == repo.SELF_PACED:
            self.say(
                self.tr.gettext("Send %(next)s for your next lesson.")
                % {"next": self.word(Command.NEXT)}
            )

    # --- lessons -----------------------------------------------------------------------------

    async def first_lesson(self) -> None:
        """Start the course: the first lesson now (self-paced) or on schedule."""
        enrollment = self.enrollment
        assert enrollment is not None
        if enrollment.pacing != repo.SELF_PACED:
            self.say(self.tr.gettext("Your first lesson will arrive on the cohort's schedule."))
            return
        if enrollment.lesson_id is None:
            first = next(iter(self.d.courses[enrollment.course_id].lessons))
            await self.deliver(first)
        else:
            self.resume()

    async def deliver(self, lesson_id: str) -> None:
        """Send a lesson in the best locale of the learner's chain, and log it."""
        enrollment = self.enrollment
        assert enrollment is not None
        lesson, locale = self.d.localized(enrollment.course_id, lesson_id, self.learner.locale)
        self.replies.extend(
            render.lesson_messages(
                lesson,
                channel=self.message.channel,
                address=self.message.address,
                locale=locale,
                ui=self.d.translations(locale),
                is_reply=True,
            )
        )
        await repo.record_lesson_sent(
            self.conn,
            learner_id=self.learner.id,
            enrollment_id=enrollment.id,
            lesson_id=lesson_id,
            channel=str(self.message.channel),
            locale=locale,
            now=self.now,
        )
        self.set_enrollment(lesson_id=lesson_id, question_index=0, attempt=0)
        self.event(EventType.LESSON_DELIVERED, lesson_id=lesson_id, locale=locale)

    def send_question(self, course_id: str, lesson_id: str, index: int, prefix: str = "") -> None:
        """Send question `index` of a lesson, with an optional line before it."""
        lesson, locale = self.d.localized(course_id, lesson_id, self.learner.locale)
        message = render.question_message(
            lesson,
            index,
            channel=self.message.channel,
            address=self.message.address,
            locale=locale,
            ui=self.d.translations(locale),
        )
        if prefix:
            message = _prefixed(message, prefix)
        self.replies.append(message)

    async def next_lesson(self) -> None:
        """NEXT: the next lesson, or why not."""
        tr, enrollment = self.tr, self.enrollment
        if enrollment is None:
            self.hint()
        elif enrollment.status == repo.ENROLLMENT_COMPLETED:
            self.say(tr.gettext("You have finished the course. Well done!"))
        elif enrollment.question_index is not None and enrollment.lesson_id is not None:
            prefix = tr.gettext("Please answer this question first:")
            self.send_question(
                enrollment.course_id, enrollment.lesson_id, enrollment.question_index, prefix
            )
        elif enrollment.pacing != repo.SELF_PACED:
            self.say(tr.gettext("Your next lesson will arrive on the cohort's schedule."))
        else:
            # The first lesson not yet completed: a pushed lesson done out of order is skipped,
            # the ones it jumped over are still offered.
            following = await self.first_not_completed()
            if following is not None:
                await self.deliver(following)
            else:
                self.say(tr.gettext("You have finished the course. Well done!"))

    async def completed(self) -> set[str]:
        """The lessons of the current course this enrollment has completed (read once a turn)."""
        enrollment = self.enrollment
        assert enrollment is not None
        key = (enrollment.id, enrollment.course_id)
        if self._completed_key != key:
            self._completed = await repo.completed_lessons(
                self.conn, enrollment.id, enrollment.course_id
            )
            self._completed_key = key
        return self._completed

    async def first_not_completed(self) -> str | None:
        """The first lesson of the course, in order, not yet completed; None if none is left."""
        enrollment = self.enrollment
        assert enrollment is not None
        done = await self.completed()
        order = self.d.courses[enrollment.course_id].lessons
        return next((x for x in order if x not in done), None)

    async def progress(self) -> None:
        """PROGRESS: lessons done of total and the first-try quiz score."""
        tr, enrollment, locale = self.tr, self.enrollment, self.locale
        if enrollment is None:
            self.hint()
            return
        course = self.d.courses[enrollment.course_id]
        completed = await self.completed()
        teaching = course.teaching_lessons()
        # The lessons completed, as recorded: the same set `cohort show` and the log count.
        done = len(completed.intersection(teaching))
        total = len(teaching)
        lines = [
            tr.ngettext(
                "You have completed %(done)s of %(total)s lesson.",
                "You have completed %(done)s of %(total)s lessons.",
                total,
            )
            % {
                "done": self.iso(format_number(done, locale)),
                "total": self.iso(format_number(total, locale)),
            }
        ]
        measuring = course.measuring_lessons()
        if measuring:
            lines.append(
                tr.gettext("Check-ins and survey done: %(done)s of %(total)s.")
                % {
                    "done": self.iso(format_number(len(completed.intersection(measuring)), locale)),
                    "total": self.iso(format_number(len(measuring), locale)),
                }
            )
        answered, right = await repo.first_try_score(
            self.conn, enrollment.id, excluding=self._assessment_lessons()
        )
        if answered:
            lines.append(
                tr.ngettext(
                    "Quiz score: %(score)s (%(right)s of %(answered)s question right "
                    "at the first try).",
                    "Quiz score: %(score)s (%(right)s of %(answered)s questions right "
                    "at the first try).",
                    answered,
                )
                % {
                    "score": self.iso(format_percent(right / answered, locale)),
                    "right": self.iso(format_number(right, locale)),
                    "answered": self.iso(format_number(answered, locale)),
                }
            )
        else:
            lines.append(tr.gettext("No quiz answers yet."))
        self.say("\n".join(lines))

    # --- answers -----------------------------------------------------------------------------

    async def answer(self) -> None:
        """Read, grade and record a reply to the open question; then move on or retry."""
        enrollment = self.enrollment
        assert enrollment is not None and enrollment.lesson_id is not None
        assert enrollment.question_index is not None
        lesson, locale = self.d.localized(
            enrollment.course_id, enrollment.lesson_id, self.learner.locale
        )
        index = enrollment.question_index
        if index >= len(lesson.questions):  # the course changed under an open question
            await self.complete_lesson(lesson)
            return
        question = lesson.questions[index]
        reply = parse_reply(question, self.message.text, self.message.payload)
        if reply is None:
            self.unclear_answer(question, enrollment, index)
            return
        verdict = grade(question, reply)
        attempt = enrollment.attempt + 1
        self.record_answer(question, reply, verdict.correct, attempt, locale)
        tr = self.tr
        if lesson.type == "assessment":
            # It measures what the learner knows: one answer, graded in the log only, and no
            # right or wrong shown (which would teach the item before the post-assessment).
            self.say(tr.gettext("Thank you for your answer."))
        elif verdict.correct is False and attempt < MAX_ATTEMPTS:
            self.set_enrollment(attempt=attempt)
            feedback = verdict.feedback or tr.gettext("Not quite.")
            # gettext outside the f-string: Babel's extractor does not look inside f-strings.
            try_again = tr.gettext("Try again.")
            self.send_question(
                enrollment.course_id, enrollment.lesson_id, index, prefix=f"{feedback}\n{try_again}"
            )
            return
        elif verdict.correct is False:
            self.say(
                "\n".join(
                    (
                        verdict.feedback or tr.gettext("Not quite."),
                        tr.gettext("The right answer is: %(answer)s")
                        % {"answer": _right_answer_text(question, tr)},
                    )
                ),
                locale=locale,
            )
        elif verdict.correct:
            self.say(verdict.feedback or tr.gettext("Correct!"), locale=locale)
        else:
            self.say(tr.gettext("Thank you for your answer."))
        if index + 1 < len(lesson.questions):
            self.set_enrollment(question_index=index + 1, attempt=0)
            self.send_question(enrollment.course_id, enrollment.lesson_id, index + 1)
        else:
            await self.complete_lesson(lesson)

    def unclear_answer(self, question: Question, enrollment: EnrollmentRecord, index: int) -> None:
        """Say how to answer this kind of question, and ask it again."""
        tr = self.tr
        if isinstance(question, TrueFalse):
            hint = tr.gettext("Please answer true or false (1 or 2).")
        elif isinstance(question, Rating):
            hint = tr.gettext("Please reply with a number from 1 to 5.")
        elif isinstance(question, MultipleSelect):
            hint = tr.gettext("Please reply with the numbers of your choices, e.g. 1,3.")
        else:
            hint = tr.gettext("Please reply with the number of your choice.")
        assert enrollment.lesson_id is not None
        self.send_question(enrollment.course_id, enrollment.lesson_id, index, prefix=hint)

    def record_answer(
        self, question: Question, reply: Reply, correct: bool | None, attempt: int, locale: str
    ) -> None:
        """Queue the answers row and the `answered` event."""
        enrollment = self.enrollment
        assert enrollment is not None and enrollment.lesson_id is not None
        self.answers.append(
            {
                "enrollment_id": enrollment.id,
                "course_id": enrollment.course_id,
                "lesson_id": enrollment.lesson_id,
                "question_id": question.id,
                "attempt": attempt,
                "response": reply.response,
                "correct": correct,
                "answered_at": self.now,
            }
        )
        self.event(
            EventType.ANSWERED,
            lesson_id=enrollment.lesson_id,
            question_id=question.id,
            locale=locale,
            correct=correct,
            attempt=attempt,
            # The value itself, so a survey or an assessment can be read from the log. A
            # reflection may say anything about the learner: it stays in the answers table.
            detail=(
                {"kind": question.kind}
                if isinstance(question, FreeText)
                else {"kind": question.kind, "value": reply.response}
            ),
        )

    async def complete_lesson(self, lesson: Lesson) -> None:
        """Close a lesson; close the course and move along the pathway if it was the last."""
        enrollment = self.enrollment
        assert enrollment is not None
        tr = self.tr
        self.set_enrollment(question_index=None, attempt=0)
        course = self.d.courses[enrollment.course_id]
        done = await self.completed()
        teaching = set(course.teaching_lessons())
        was_complete = teaching <= done
        first_time = lesson.id not in done
        if first_time:
            await repo.record_lesson_completed(
                self.conn,
                enrollment_id=enrollment.id,
                course_id=enrollment.course_id,
                lesson_id=lesson.id,
                now=self.now,
            )
            done.add(lesson.id)
            self.event(EventType.LESSON_COMPLETED, lesson_id=lesson.id)
        # The course is completed when all its teaching lessons are; the assessments and the
        # survey are counted on their own and may still follow.
        if teaching <= done and not was_complete:
            self.event(EventType.COURSE_COMPLETED)
            self.say(tr.gettext("Congratulations, you have finished the course!"))
        left = [x for x in course.lessons if x not in done]
        if left:
            if teaching <= done and not was_complete:
                if enrollment.pacing == repo.SELF_PACED:
                    self.say(
                        tr.gettext("Send %(next)s for your next lesson.")
                        % {"next": self.word(Command.NEXT)}
                    )
                else:
                    self.say(tr.gettext("Your next lesson will arrive on the cohort's schedule."))
            elif enrollment.pacing == repo.SELF_PACED:
                self.say(
                    tr.gettext("Lesson complete! Send %(next)s for the next lesson.")
                    % {"next": self.word(Command.NEXT)}
                )
            else:
                self.say(tr.gettext("Lesson complete! The next lesson comes on schedule."))
            return
        # Nothing of this course is left: the enrollment moves on along the pathway.
        if was_complete:
            self.say(tr.gettext("Thank you! You have done everything in this course."))
        pathway = enrollment.course_ids
        position = pathway.index(enrollment.course_id) if enrollment.course_id in pathway else -1
        following = [c for c in pathway[position + 1 :] if c in self.d.courses]
        if following:
            self.set_enrollment(course_id=following[0], lesson_id=None)
            title = self._course_title(following[0])
            self.say(
                tr.gettext("Course complete! Your next course is %(title)s.") % {"title": title}
            )
            if enrollment.pacing == repo.SELF_PACED:
                await self.deliver(next(iter(self.d.courses[following[0]].lessons)))
            return
        self.set_enrollment(status=repo.ENROLLMENT_COMPLETED, completed_at=self.now)

    def _assessment_lessons(self) -> list[str]:
        """Assessment lessons of every course: their answers stay out of the quiz score."""
        return [x for loaded in self.d.courses.values() for x in loaded.assessments()]

    def _course_title(self, course_id: str) -> str:
        translations = self.d.content.get(course_id)
        if translations is None:
            return self.d.courses[course_id].course.title
        return translations.course_title(self.learner.locale or self.d.default_locale)


def _right_answer_text(question: Question, tr: UiTranslator) -> str:
    right = correct_answer(question)
    if isinstance(right, bool):
        return tr.gettext("True") if right else tr.gettext("False")
    options = getattr(question, "options", [])
    return "; ".join(f"{n}) {options[n - 1].text}" for n in right or ())


def _prefixed(message: OutboundMessage, prefix: str) -> OutboundMessage:
    return OutboundMessage(
        message.channel,
        message.address,
        f"{prefix}\n\n{message.text}",
        message.locale,
        buttons=message.buttons,
        image=message.image,
        numbered=message.numbered,
        is_reply=message.is_reply,
        meta=dict(message.meta),
    )
