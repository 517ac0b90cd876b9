"""The learner dialogue: one inbound message in, the replies out, in one transaction."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.dialogue import keywords
from bot.dialogue.outbound import (
    LessonTarget,
    PreparedLesson,
    prepare_lesson,
    prepare_reminder,
    whatsapp_template,
)
from bot.dialogue.runner import runner_for
from bot.dialogue.turn import Turn
from bot.domain import (
    ChannelName,
    InboundMessage,
    OutboundMessage,
    RenderedMessage,
)
from bot.i18n import (
    SHIPPED_LOCALES,
    UiCatalogs,
    UiTranslator,
    fallback_chain,
    is_rtl,
    isolate,
    language_name,
)
from bot.lessons.catalogs import CourseTranslations
from bot.lessons.loader import LoadedCourse
from bot.lessons.models import FreeText, Lesson
from bot.store import repository as repo
from bot.store.availability import StoreUnavailable, store_outage, unavailable_reason
from bot.store.db import utcnow

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
        outbox_channels: frozenset[ChannelName] = frozenset(),
        whatsapp_templates: Mapping[str, str] | None = None,
    ) -> None:
        self.engine = engine
        # Replies on these channels go into the outbox in the turn's own transaction (the
        # dispatcher sends them); on the others (the sandbox) `handle` returns them.
        self.outbox_channels = outbox_channels
        # Called after a turn enqueued replies or released held lessons: wakes the dispatcher.
        self.on_enqueued: Callable[[], None] | None = None
        self.whatsapp_templates: Mapping[str, str] = dict(whatsapp_templates or {})
        self.lesson_cache: dict[
            tuple[str, str, str | None, ChannelName], tuple[list[OutboundMessage], str, str]
        ] = {}
        self.runner = runner_for(engine)
        # Turns refused by the store: one warning when that starts, one when it ends; /healthz
        # reads it (store_outage), because a refused turn is the surest sign of a full disk.
        self.outage = store_outage(engine)
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
            replies = await self.runner.run(lambda db: Turn(self, db, message, now).run())
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is not None:
                # The store refused the turn (disk full, read-only, down): nothing is stored,
                # so the webhook must answer 503 and the provider's retry will be processed.
                self.outage.refused(reason)
                raise StoreUnavailable(reason) from exc
            # A bug of ours on this message: a retry would fail alike, so the webhook still
            # answers 2xx (no endless provider retries); log it, apologise, change nothing.
            log.exception("dialogue failed on a %s message", message.channel)
            tr = self.ui.translations(self.default_locale)
            text = tr.gettext("Sorry, something went wrong. Please try again in a moment.")
            # Sent directly even on outbox channels: the turn's transaction was rolled back.
            return [OutboundMessage(message.channel, message.address, text, self.default_locale)]
        self.outage.succeeded()
        if message.channel in self.outbox_channels and self.on_enqueued is not None:
            self.on_enqueued()  # committed: the dispatcher may send now
        return replies

    def prepare_lesson(self, target: LessonTarget, now: datetime) -> PreparedLesson | None:
        """A scheduled lesson for the dispatcher, with the writes that follow its sending."""
        return prepare_lesson(self, target, now)

    def prepare_reminder(
        self, target: LessonTarget, question_index: int | None
    ) -> PreparedLesson | None:
        """A reminder of the open question for the dispatcher; None once it is answered."""
        return prepare_reminder(self, target, question_index)

    def whatsapp_template(
        self, target: LessonTarget, prepared: PreparedLesson
    ) -> RenderedMessage | None:
        """The approved template that announces a lesson outside WhatsApp's 24 h window."""
        return whatsapp_template(self, target, prepared)

    async def create_cohort(
        self,
        *,
        name: str,
        join_code: str,
        course_ids: Sequence[str],
        time_zone: str = "UTC",
        pacing: str = repo.SELF_PACED,
        open_to_sandbox: bool = False,
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
                open_to_sandbox=open_to_sandbox,
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
