"""The state of one dialogue turn: who, where, the replies and the writes batched at the end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.dialogue.keywords import Command, help_word
from bot.domain import Button, EventType, InboundMessage, OutboundMessage
from bot.i18n import UiTranslator
from bot.store import repository as repo
from bot.store.events import EventRow, append_events
from bot.store.repository import Db, EnrollmentRecord, LearnerRecord

if TYPE_CHECKING:
    from bot.dialogue.flow import Dialogue

# "zone^language>profile": a prompt a command opened over another, which is asked again after.
BACK = "^"
MAX_STATE = 40  # learners.dialogue_state is a String(40)


class TurnContext:
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
        self.back: str | None = None  # the state prompt to ask again once the open one is done
        # The current course's completed lessons, read at most once a turn (see LessonTurn).
        self._completed: set[str] = set()
        self._completed_key: tuple[int, str] | None = None

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def locale(self) -> str:
        """The UI locale of the replies."""
        return self.learner.locale or self.hint_locale or self.d.default_locale

    @property
    def tr(self) -> UiTranslator:
        """The UI catalog of the reply locale."""
        return self.d.translations(self.locale)

    def iso(self, fragment: str) -> str:
        """A left-to-right fragment, isolated when the reply locale is right to left."""
        return self.d.isolate(fragment, self.locale)

    def word(self, command: Command) -> str:
        """A command's keyword in the reply locale, isolated."""
        return self.iso(help_word(command, self.locale))

    def say(self, text: str, buttons: Sequence[Button] = (), locale: str | None = None) -> None:
        """Queue a reply."""
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
        """Queue an event of the completion log (cohort and course filled in)."""
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
        """Change learner columns, written once by `flush`."""
        for name, value in values.items():
            setattr(self.learner, name, value)
        self.learner_values.update(values)

    def set_enrollment(self, **values: Any) -> None:
        """Change enrollment columns, written once by `flush`."""
        assert self.enrollment is not None
        for name, value in values.items():
            if name != "completed_at":
                setattr(self.enrollment, name, value)
        self.enrollment_values.update(values)
        if "question_index" in values or "attempt" in values:
            # A question was asked or answered: reminders count afresh from now.
            question_open = self.enrollment.question_index is not None
            self.enrollment_values["awaiting_since"] = self.now if question_open else None
            self.enrollment_values["reminders_sent"] = 0

    def set_state(self, state: str | None) -> None:
        """Remember where the learner is in a multi-step exchange."""
        if self.learner.dialogue_state != state:
            self.set_learner(dialogue_state=state)

    def open_state(self, state: str) -> None:
        """Make `state` the open prompt, keeping the one it interrupted to ask again after."""
        back = self.back
        if back and back != state and len(state) + len(BACK) + len(back) <= MAX_STATE:
            state = f"{state}{BACK}{back}"
        self.set_state(state)
        # When the menu was last shown: a question the dispatcher sends later is shown after it.
        self.set_learner(updated_at=self.now)

    def close_state(self) -> None:
        """The open state prompt is answered: the interrupted one (if any) is open again."""
        back, self.back = self.back, None
        self.set_state(back)

    async def flush(self) -> None:
        """Write what this turn changed: a few statements, whatever happened."""
        if self.learner_values:
            self.learner_values["updated_at"] = self.now
            await repo.update_learner(self.conn, self.learner.id, self.learner_values)
        if self.enrollment_values and self.enrollment is not None:
            await repo.update_enrollment(self.conn, self.enrollment.id, self.enrollment_values)
        await repo.insert_answers(self.conn, self.answers)
        await append_events(as_async(self.conn), self.events)

    def hint(self) -> None:
        """A short hint: how to start, or where to find the commands."""
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


def as_async(db: Db) -> AsyncConnection:
    """The store's event and inbound helpers take AsyncConnection: every Db fits them."""
    # They only await `execute` and read `dialect`, which every Db has (repository.Db).
    return cast(AsyncConnection, db)
