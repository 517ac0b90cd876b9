"""The learner dialogue: one inbound message in, the replies out, in one transaction."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.dialogue import keywords
from bot.dialogue.answers import Reply, correct_answer, grade, parse_reply
from bot.dialogue.keywords import Command, Match, find_command, help_word, is_yes, yes_word
from bot.dialogue.profile import (
    SKIP_PAYLOAD,
    gender_buttons,
    parse_country,
    pick_button,
    role_buttons,
)
from bot.dialogue.runner import runner_for
from bot.domain import (
    Button,
    EventType,
    InboundMessage,
    LearnerStatus,
    OutboundMessage,
)
from bot.i18n import (
    SHIPPED_LOCALES,
    UiCatalogs,
    UiTranslator,
    fallback_chain,
    format_number,
    format_percent,
    is_rtl,
    isolate,
    language_name,
)
from bot.lessons import render
from bot.lessons.catalogs import CourseTranslations
from bot.lessons.loader import LoadedCourse
from bot.lessons.models import FreeText, Lesson, MultipleSelect, Question, Rating, TrueFalse
from bot.store import repository as repo
from bot.store.db import utcnow
from bot.store.events import EventRow, append_events
from bot.store.inbound import mark_processed
from bot.store.repository import Db, EnrollmentRecord, LearnerRecord

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # wrong answers before the right one is shown and the lesson moves on
# States kept in learners.dialogue_state between messages.
CONFIRM_DELETE = "confirm_delete"
LANGUAGE = "language"  # "language>profile" / "language>lesson": what follows the choice
PROFILE = "profile:"  # "profile:role", "profile:country", "profile:gender"
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")


class Dialogue:
    """Turns each inbound message into store writes and channel-neutral replies."""

    def __init__(
        self,
        engine: AsyncEngine,
        courses: Mapping[str, LoadedCourse],
        content: Mapping[str, CourseTranslations],
        ui: UiCatalogs,
        *,
        default_locale: str = "en",
        clock: Callable[[], datetime] = utcnow,
        locales: Sequence[str] = SHIPPED_LOCALES,
    ) -> None:
        self.engine = engine
        self.runner = runner_for(engine)
        self.courses = courses
        self.content = content
        self.ui = ui
        self.default_locale = default_locale
        self.clock = clock
        self.locales = tuple(locales)  # offered in the language menu, in this order
        self.free_text_questions = [
            (course_id, lesson.id, question.id)
            for course_id, loaded in courses.items()
            for lesson in loaded.lessons.values()
            for question in lesson.questions
            if isinstance(question, FreeText)
        ]
        self._chains: dict[tuple[str | None, str], tuple[str, ...]] = {}
        self._translations: dict[str, UiTranslator] = {}
        self._rtl: dict[str, bool] = {}
        self._language_words = {
            keywords.normalize(word): locale
            for locale in self.locales
            for word in (locale, language_name(locale))
        }

    async def handle(self, message: InboundMessage) -> list[OutboundMessage]:
        """The replies to one message, in order ([] for a duplicate or a stopped learner)."""
        now = self.clock()
        try:
            return await self.runner.run(lambda db: _Turn(self, db, message, now).run())
        except Exception:
            # A learner's message must never crash a webhook: log, apologise, change nothing.
            log.exception("dialogue failed on a %s message", message.channel)
            tr = self.ui.translations(self.default_locale)
            text = tr.gettext("Sorry, something went wrong. Please try again in a moment.")
            return [OutboundMessage(message.channel, message.address, text, self.default_locale)]

    async def create_cohort(
        self,
        *,
        name: str,
        join_code: str,
        course_ids: Sequence[str],
        time_zone: str = "UTC",
        pacing: str = repo.SELF_PACED,
    ) -> int:
        """Create a cohort (or return the one with this join code): its id."""
        unknown = [course_id for course_id in course_ids if course_id not in self.courses]
        if unknown or not course_ids:
            known = ", ".join(sorted(self.courses)) or "none"
            raise ValueError(f"course_ids: unknown course(s) {unknown or '[]'} (known: {known})")
        now = self.clock()
        return await self.runner.run(
            lambda db: repo.create_cohort(
                db,
                name=name,
                join_code=join_code,
                course_ids=course_ids,
                time_zone=time_zone,
                pacing=pacing,
                now=now,
            )
        )

    async def aclose(self) -> None:
        """Release the dialogue's worker thread and connection (the engine stays open)."""
        await self.runner.aclose()

    def translations(self, locale: str) -> UiTranslator:
        """The UI catalog of a locale (cached here: the lookup parses the locale each time)."""
        found = self._translations.get(locale)
        if found is None:
            found = self._translations[locale] = self.ui.translations(locale)
        return found

    def isolate(self, fragment: str, locale: str) -> str:
        """`fragment` wrapped in FSI/PDI when `locale` is right to left (cached per locale)."""
        rtl = self._rtl.get(locale)
        if rtl is None:
            rtl = self._rtl[locale] = is_rtl(locale)
        return isolate(fragment, locale) if rtl else fragment

    def chain(self, learner_locale: str | None, source: str) -> tuple[str, ...]:
        """The learner's content fallback chain for a course source locale (cached)."""
        key = (learner_locale, source)
        chain = self._chains.get(key)
        if chain is None:
            chain = tuple(
                fallback_chain(learner_locale, source=source, default=self.default_locale)
            )
            self._chains[key] = chain
        return chain

    def lesson_in(self, course_id: str, lesson_id: str, learner_locale: str | None) -> Lesson:
        """A lesson localized for a learner, with the locale chosen by the fallback chain."""
        return self.localized(course_id, lesson_id, learner_locale)[0]

    def localized(
        self, course_id: str, lesson_id: str, learner_locale: str | None
    ) -> tuple[Lesson, str]:
        """(the localized lesson, the locale it is delivered in)."""
        loaded = self.courses[course_id]
        lesson = loaded.lessons[lesson_id]
        translations = self.content.get(course_id)
        source = loaded.course.source_locale
        if translations is None:
            return lesson, source
        locale = translations.pick_locale(lesson_id, self.chain(learner_locale, source))
        return translations.localize(lesson, locale), locale

    def match_language(self, text: str, payload: str | None) -> str | None:
        """The locale a reply picks in the language menu: payload, number, name or code."""
        if payload is not None:
            code = payload.removeprefix("lang:")
            return code if payload.startswith("lang:") and code in self.locales else None
        word = keywords.normalize(text)
        if word.isdigit():
            number = int(word)
            return self.locales[number - 1] if 1 <= number <= len(self.locales) else None
        return self._language_words.get(word)


class _Turn:
    """One message's work: reads, the replies, and the writes batched at the end."""

    def __init__(self, dialogue: Dialogue, db: Db, message: InboundMessage, now: datetime) -> None:
        self.d = dialogue
        self.conn = db
        self.message = message
        self.now = now
        self.replies: list[OutboundMessage] = []
        self.events: list[EventRow] = []
        self.answers: list[dict[str, Any]] = []
        self.learner_values: dict[str, Any] = {}
        self.enrollment_values: dict[str, Any] = {}
        self.hint_locale: str | None = None  # the locale of a keyword, for learners with none
        self.learner: LearnerRecord
        self.enrollment: EnrollmentRecord | None = None

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def locale(self) -> str:
        """The UI locale of the replies."""
        return self.learner.locale or self.hint_locale or self.d.default_locale

    @property
    def tr(self) -> UiTranslator:
        return self.d.translations(self.locale)

    def iso(self, fragment: str) -> str:
        return self.d.isolate(fragment, self.locale)

    def word(self, command: Command) -> str:
        return self.iso(help_word(command, self.locale))

    def say(self, text: str, buttons: Sequence[Button] = (), locale: str | None = None) -> None:
        self.replies.append(
            OutboundMessage(
                self.message.channel,
                self.message.address,
                text,
                locale or self.locale,
                buttons=tuple(buttons),
            )
        )

    def event(self, type: EventType, **values: Any) -> None:
        enrollment = self.enrollment
        if enrollment is not None:
            values.setdefault("cohort_id", enrollment.cohort_id)
            values.setdefault("course_id", enrollment.course_id)
        self.events.append(
            EventRow(
                type=type,
                learner_key=self.learner.learner_key,
                channel=str(self.message.channel),
                occurred_at=self.now,
                **values,
            )
        )

    def set_learner(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self.learner, name, value)
        self.learner_values.update(values)

    def set_enrollment(self, **values: Any) -> None:
        assert self.enrollment is not None
        for name, value in values.items():
            if name != "completed_at":
                setattr(self.enrollment, name, value)
        self.enrollment_values.update(values)

    def set_state(self, state: str | None) -> None:
        if self.learner.dialogue_state != state:
            self.set_learner(dialogue_state=state)

    async def flush(self) -> None:
        """Write what this turn changed: a few statements, whatever happened."""
        if self.learner_values:
            self.learner_values["updated_at"] = self.now
            await repo.update_learner(self.conn, self.learner.id, self.learner_values)
        if self.enrollment_values and self.enrollment is not None:
            await repo.update_enrollment(self.conn, self.enrollment.id, self.enrollment_values)
        await repo.insert_answers(self.conn, self.answers)
        await append_events(_as_async(self.conn), self.events)

    # --- dispatch ----------------------------------------------------------------------------

    async def run(self) -> list[OutboundMessage]:
        message = self.message
        if message.provider_id is not None and not await mark_processed(
            _as_async(self.conn), str(message.channel), message.provider_id, received_at=self.now
        ):
            return []
        found = await repo.load_learner(self.conn, str(message.channel), message.address)
        if found is None:
            self.learner = await repo.create_learner(
                self.conn, str(message.channel), message.address, self.now
            )
        else:
            self.learner, self.enrollment = found
            self.learner_values["last_inbound_at"] = self.now
        await self.dispatch(_command(message.text))
        await self.flush()
        return self.replies

    async def dispatch(self, match: Match | None) -> None:
        text, payload = self.message.text, self.message.payload
        if match is not None and self.learner.locale is None:
            self.hint_locale = match.locale
        status = self.learner.status
        if status == LearnerStatus.STOPPED:
            if match is not None and match.command == Command.START:
                await self.restart()
            return  # a stopped learner receives nothing at all until START
        if status != LearnerStatus.ACTIVE:
            # Paused (unanswered reminders) or marked unreachable: a reply proves otherwise.
            self.set_learner(status=LearnerStatus.ACTIVE.value)
        if self.learner.dialogue_state == CONFIRM_DELETE:
            if payload == "yes" or (payload is None and is_yes(text)):
                await self.delete()
                return
            self.set_state(None)
            self.say(self.tr.gettext("Deletion cancelled: your data is kept."))
            if match is None or match.command == Command.DELETE or payload == "no":
                return
        if match is not None and match.command != Command.SKIP:
            await self.command(match)
            return
        state = self.learner.dialogue_state or ""
        if payload is not None and payload.startswith("lang:") and not state:
            state = LANGUAGE  # a language button pressed from an older menu
        if state.startswith(LANGUAGE):
            await self.choose_language(state)
        elif state.startswith(PROFILE):
            await self.profile_reply(state.removeprefix(PROFILE), skip=match is not None)
        elif self.enrollment is not None and self.enrollment.question_index is not None:
            await self.answer()
        elif match is not None:  # SKIP with nothing to skip
            self.hint()
        elif self.enrollment is None and _CODE.match(text.strip()) and _looks_like_code(text):
            await self.join(text.strip())
        else:
            self.hint()

    async def command(self, match: Match) -> None:
        command = match.command
        if command == Command.STOP:
            self.stop()
        elif command == Command.START:
            if match.argument and await repo.find_cohort(self.conn, match.argument):
                await self.join(match.argument)  # a deep link: /start ABC123
            else:
                await self.restart()
        elif command == Command.JOIN:
            if match.argument:
                await self.join(match.argument)
            else:
                code = self.iso(help_word(Command.JOIN, self.locale) + " ABC123")
                self.say(
                    self.tr.gettext("Send %(join)s followed by your cohort code, e.g. %(example)s.")
                    % {"join": self.word(Command.JOIN), "example": code}
                )
        elif command == Command.DELETE:
            self.set_state(CONFIRM_DELETE)
            tr = self.tr
            self.say(
                tr.gettext(
                    "This deletes your number, language, profile and written answers, and stops "
                    "all messages. Reply %(yes)s to confirm; anything else cancels."
                )
                % {"yes": self.iso(yes_word(self.locale))},
                buttons=(Button(tr.gettext("Yes, delete"), "yes"), Button(tr.gettext("No"), "no")),
            )
        elif command == Command.HELP:
            self.help()
        elif command == Command.LANGUAGE:
            self.ask_language(LANGUAGE)
        elif command == Command.PROGRESS:
            await self.progress()
        elif command == Command.NEXT:
            await self.next_lesson()

    # --- commands ----------------------------------------------------------------------------

    def hint(self) -> None:
        tr = self.tr
        if self.enrollment is None:
            self.say(
                tr.gettext(
                    "Welcome! To start, send %(join)s followed by your cohort code. "
                    "Send %(help)s for all commands."
                )
                % {"join": self.word(Command.JOIN), "help": self.word(Command.HELP)}
            )
        else:
            self.say(
                tr.gettext("Sorry, I did not understand. Send %(help)s to see what you can do.")
                % {"help": self.word(Command.HELP)}
            )

    def help(self) -> None:
        tr = self.tr
        lines = [
            tr.gettext("You can send:"),
            tr.gettext("%(word)s: the next lesson") % {"word": self.word(Command.NEXT)},
            tr.gettext("%(word)s: your progress and quiz score")
            % {"word": self.word(Command.PROGRESS)},
            tr.gettext("%(word)s: choose your language") % {"word": self.word(Command.LANGUAGE)},
            tr.gettext("%(word)s + code: join a cohort") % {"word": self.word(Command.JOIN)},
            tr.gettext("%(word)s: stop all messages") % {"word": self.word(Command.STOP)},
            tr.gettext("%(word)s: receive messages again") % {"word": self.word(Command.START)},
            tr.gettext("%(word)s: delete your data") % {"word": self.word(Command.DELETE)},
            tr.gettext("To answer a question, reply with the number of your choice."),
        ]
        self.say("\n".join(lines))

    def stop(self) -> None:
        self.set_learner(status=LearnerStatus.STOPPED.value, dialogue_state=None)
        self.event(EventType.STOPPED)
        self.say(
            self.tr.gettext(
                "You will not receive any more messages. Send %(start)s at any time to resume."
            )
            % {"start": self.word(Command.START)}
        )

    async def restart(self) -> None:
        if self.learner.status == LearnerStatus.STOPPED:
            self.set_learner(status=LearnerStatus.ACTIVE.value)
            self.event(EventType.RESTARTED)
            self.say(self.tr.gettext("Welcome back! Your messages are on again."))
            self.resume()
        elif self.enrollment is None:
            self.hint()
        else:
            self.say(self.tr.gettext("Welcome back!"))
            self.resume()

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

    async def delete(self) -> None:
        learner, tr, locale = self.learner, self.tr, self.locale
        await repo.delete_personal_data(
            self.conn, learner, free_text_questions=self.d.free_text_questions, now=self.now
        )
        self.learner_values.clear()  # the row is final: nothing more may be written to it
        self.enrollment = None  # the tombstone event names no cohort: it is about the person
        self.event(EventType.DATA_DELETED, detail={"tombstone": learner.learner_key})
        self.say(
            tr.gettext(
                "Your data has been deleted and you will receive no more messages. "
                "If you write again, you will start as a new learner."
            ),
            locale=locale,
        )

    # --- joining -----------------------------------------------------------------------------

    async def join(self, code: str) -> None:
        tr = self.tr
        cohort = await repo.find_cohort(self.conn, code)
        if cohort is None or cohort.status != "active":
            self.say(
                tr.gettext(
                    "No cohort has the code %(code)s. Check the code with your trainer and "
                    "send it again."
                )
                % {"code": self.iso(code.upper())}
            )
            return
        existing = await repo.find_enrollment(self.conn, self.learner.id, cohort)
        if existing is not None:
            self.enrollment = existing
            self.say(tr.gettext("You are already in %(cohort)s.") % {"cohort": cohort.name})
            self.resume()
            return
        # The profile is asked once, at a learner's first cohort (no current enrollment).
        first = self.enrollment is None
        self.enrollment = await repo.create_enrollment(self.conn, self.learner.id, cohort, self.now)
        self.event(EventType.ENROLLED)
        self.say(tr.gettext("Welcome to %(cohort)s!") % {"cohort": cohort.name})
        after = "profile" if first else "lesson"
        if self.learner.locale is None:
            self.ask_language(f"{LANGUAGE}>{after}")
        else:
            await self.continue_with(after)

    async def continue_with(self, step: str) -> None:
        if step == "profile":
            self.ask_profile("role")
        elif step == "lesson":
            await self.first_lesson()

    def ask_language(self, state: str) -> None:
        self.set_state(state)
        buttons = [Button(language_name(code), f"lang:{code}") for code in self.d.locales]
        # Each language is named in its own language, so this prompt is the only text in ours.
        self.say(self.tr.gettext("Choose your language:"), buttons=buttons)

    async def choose_language(self, state: str) -> None:
        locale = self.d.match_language(self.message.text, self.message.payload)
        if locale is None:
            self.say(self.tr.gettext("Please choose one of the languages by its number."))
            self.ask_language(state)
            return
        self.set_learner(locale=locale)
        self.set_state(None)
        self.event(EventType.LANGUAGE_CHANGED, locale=locale)
        self.say(
            self.tr.gettext("Language set: %(language)s.") % {"language": language_name(locale)}
        )
        _, _, after = state.partition(">")
        if after:
            await self.continue_with(after)
        else:
            self.resume()

    def ask_profile(self, field: str) -> None:
        self.set_state(PROFILE + field)
        tr = self.tr
        if field == "role":
            self.say(
                tr.gettext(
                    "Three optional questions help us improve the course for people like you. "
                    "What is your role?"
                ),
                buttons=role_buttons(tr),
            )
        elif field == "country":
            self.say(
                tr.gettext("Which country do you work in? Write its name, or send %(skip)s.")
                % {"skip": self.word(Command.SKIP)},
                buttons=(Button(tr.gettext("Skip"), SKIP_PAYLOAD),),
            )
        else:
            self.say(tr.gettext("What is your gender?"), buttons=gender_buttons(tr))

    async def profile_reply(self, field: str, *, skip: bool) -> None:
        text, payload = self.message.text, self.message.payload
        value: str | None = None
        if not skip and payload != SKIP_PAYLOAD:
            if field == "country":
                value = parse_country(text) if payload is None else None
            else:
                buttons = role_buttons(self.tr) if field == "role" else gender_buttons(self.tr)
                picked = pick_button(buttons, text, payload)
                if picked == SKIP_PAYLOAD:
                    skip = True
                elif picked is not None:
                    value = picked.partition(":")[2]
            if value is None and not skip:
                self.say(
                    self.tr.gettext(
                        "Sorry, I did not understand. Choose an option or send %(skip)s."
                    )
                    % {"skip": self.word(Command.SKIP)}
                )
                self.ask_profile(field)
                return
        if value is not None:
            self.set_learner(**{f"profile_{field}": value})
            self.event(EventType.PROFILE_UPDATED, detail={"field": field})
        following = {"role": "country", "country": "gender"}.get(field)
        if following is not None:
            self.ask_profile(following)
        else:
            self.set_state(None)
            self.say(self.tr.gettext("Thank you!"))
            await self.first_lesson()

    # --- lessons -----------------------------------------------------------------------------

    async def first_lesson(self) -> None:
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
            enrollment_id=enrollment.id,
            lesson_id=lesson_id,
            channel=str(self.message.channel),
            locale=locale,
            now=self.now,
        )
        self.set_enrollment(lesson_id=lesson_id, question_index=0, attempt=0)
        self.event(EventType.LESSON_DELIVERED, lesson_id=lesson_id, locale=locale)

    def send_question(self, course_id: str, lesson_id: str, index: int, prefix: str = "") -> None:
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
            order = list(self.d.courses[enrollment.course_id].lessons)
            position = -1 if enrollment.lesson_id is None else order.index(enrollment.lesson_id)
            if position + 1 < len(order):
                await self.deliver(order[position + 1])
            else:
                self.say(tr.gettext("You have finished the course. Well done!"))

    async def progress(self) -> None:
        tr, enrollment, locale = self.tr, self.enrollment, self.locale
        if enrollment is None:
            self.hint()
            return
        order = list(self.d.courses[enrollment.course_id].lessons)
        if enrollment.status == repo.ENROLLMENT_COMPLETED:
            done = len(order)
        elif enrollment.lesson_id is None:
            done = 0
        else:
            done = order.index(enrollment.lesson_id) + (enrollment.question_index is None)
        total = len(order)
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
        answered, right = await repo.first_try_score(self.conn, enrollment.id)
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
        if verdict.correct is False and attempt < MAX_ATTEMPTS:
            self.set_enrollment(attempt=attempt)
            feedback = verdict.feedback or tr.gettext("Not quite.")
            self.send_question(
                enrollment.course_id,
                enrollment.lesson_id,
                index,
                prefix=f"{feedback}\n{tr.gettext('Try again.')}",
            )
            return
        if verdict.correct is False:
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
        )

    async def complete_lesson(self, lesson: Lesson) -> None:
        enrollment = self.enrollment
        assert enrollment is not None
        tr = self.tr
        self.set_enrollment(question_index=None, attempt=0)
        self.event(EventType.LESSON_COMPLETED, lesson_id=lesson.id)
        order = list(self.d.courses[enrollment.course_id].lessons)
        if order.index(lesson.id) + 1 < len(order):
            if enrollment.pacing == repo.SELF_PACED:
                self.say(
                    tr.gettext("Lesson complete! Send %(next)s for the next lesson.")
                    % {"next": self.word(Command.NEXT)}
                )
            else:
                self.say(tr.gettext("Lesson complete! The next lesson comes on schedule."))
            return
        self.event(EventType.COURSE_COMPLETED)
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
        self.say(tr.gettext("Congratulations, you have finished the course!"))

    def _course_title(self, course_id: str) -> str:
        translations = self.d.content.get(course_id)
        if translations is None:
            return self.d.courses[course_id].course.title
        return translations.course_title(self.learner.locale or self.d.default_locale)


def _as_async(db: Db) -> AsyncConnection:
    # The store's event and inbound helpers are typed for AsyncConnection but only await
    # `execute` and read `dialect`, which every Db has (see bot.store.repository.Db).
    return cast(AsyncConnection, db)


def _command(text: str) -> Match | None:
    """A command, when the whole message is one (free text may start with "stop ...")."""
    match = find_command(text)
    if match is None:
        return None
    if match.command == Command.JOIN:
        return match
    single_argument = bool(match.argument) and len(match.argument.split()) == 1
    if match.command == Command.START and (not match.argument or single_argument):
        return match  # /start or /start <deep-link payload>
    return match if not match.argument else None


def _looks_like_code(text: str) -> bool:
    """A bare word that is probably a join code: it has a digit or is written in capitals."""
    word = text.strip()
    return any(c.isdigit() for c in word) or word.isupper()


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
