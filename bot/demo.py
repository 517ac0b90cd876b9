"""`learnbot demo`: a scripted learner session on a throw-away store, printed as a transcript."""

from __future__ import annotations

import dataclasses
import io
import tempfile
from pathlib import Path
from typing import TextIO

from bot.channels.sandbox import SandboxChannel
from bot.config import Settings
from bot.delivery import deliver
from bot.dialogue import prompts
from bot.dialogue.keywords import Command, help_word
from bot.domain import Button, ChannelName, InboundMessage, OutboundMessage
from bot.lessons.models import FreeText, MultipleSelect, Question, Rating, SingleChoice, TrueFalse
from bot.runtime import DEMO_JOIN_CODE, Runtime, build_runtime, ensure_demo_cohort

DEMO_ADDRESS = "demo-learner"
DEMO_COUNTRY = "Kenya"

# What the demo learner writes in a reflection: learner input, not UI text, so not gettext.
REFLECTIONS = {
    "en": "Our permit form asks for the same data twice.",
    "fr": "Notre formulaire de permis demande deux fois les memes donnees.",
    "es": "Nuestro formulario de permisos pide los mismos datos dos veces.",
    "ar": "استمارة التصاريح لدينا تطلب البيانات نفسها مرتين.",
    "pt": "O nosso formulario de licencas pede os mesmos dados duas vezes.",
    "sw": "Fomu yetu ya vibali inaomba taarifa zilezile mara mbili.",
}


class DemoSession:
    """One learner talking to the bot through the sandbox channel, transcript printed."""

    def __init__(self, runtime: Runtime, sandbox: SandboxChannel, out: TextIO) -> None:
        self.runtime = runtime
        self.sandbox = sandbox
        self.out = out
        self.last_buttons: tuple[Button, ...] = ()
        self.sequence = 0
        self.quiet = False  # take lessons without printing them (the middle of the course)

    async def say(self, text: str = "", payload: str | None = None) -> list[OutboundMessage]:
        """Send one learner message, print it and every reply as sent, and return the replies."""
        self.sequence += 1
        payload = self._button(payload)
        shown = text or self._label(payload)
        out = io.StringIO() if self.quiet else self.out
        out.write(f"\n> learner: {shown}\n")
        inbound = InboundMessage(
            channel=ChannelName.SANDBOX,
            address=DEMO_ADDRESS,
            text=text,
            payload=payload,
            provider_id=f"demo-{self.sequence}",
        )
        replies = await self.runtime.dialogue.handle(inbound)
        cursor = self.sandbox.cursor
        await deliver(replies, self.runtime.channels)
        for entry in self.sandbox.transcript(DEMO_ADDRESS, after=cursor):
            message = entry.message
            out.write(f"< bot: {message.text}\n")
            if message.image_url:
                out.write(f"  (image: {message.image_url})\n")
            if message.buttons:
                out.write("  " + "  ".join(f"[{b.label}]" for b in message.buttons) + "\n")
        self.last_buttons = tuple(b for reply in replies for b in reply.buttons) or ()
        return replies

    def _button(self, value: str | None) -> str | None:
        # Buttons name their prompt (`p:<prompt>:ans:2`): press the one shown with this value.
        for button in self.last_buttons:
            if prompts.parse(button.payload)[1] == value:
                return button.payload
        return value

    def _label(self, payload: str | None) -> str:
        for button in self.last_buttons:
            if button.payload == payload:
                return f"[{button.label}]"
        return f"[{payload}]"

    async def answer(self, question: Question, locale: str, *, wrong_first: bool) -> None:
        """Answer one question the way a learner would: by button or by typed reply.

        `wrong_first` answers wrongly once first: only for a lesson, as an assessment item
        takes one answer (the wrong one would be it, and the next item would get the right).
        """
        if isinstance(question, SingleChoice):
            if wrong_first:
                wrong = 1 if question.answer != 1 else 2
                await self.say(payload=f"ans:{wrong}")
            await self.say(payload=f"ans:{question.answer}")
        elif isinstance(question, TrueFalse):
            if wrong_first:
                await self.say(payload=f"tf:{str(not question.answer).lower()}")
            await self.say(payload=f"tf:{str(question.answer).lower()}")
        elif isinstance(question, MultipleSelect):
            if wrong_first:
                await self.say(str(question.answers[0]))
            await self.say(",".join(str(n) for n in question.answers))
        elif isinstance(question, Rating):
            await self.say(payload="rate:4")
        elif isinstance(question, FreeText):
            await self.say(REFLECTIONS.get(locale, REFLECTIONS["en"]))


async def run_demo(settings: Settings, *, locale: str, out: TextIO) -> None:
    """Join the demo cohort, choose a language, take the first lessons, check progress."""
    with tempfile.TemporaryDirectory(prefix="learnbot-demo-") as tmp:
        database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        runtime = await build_runtime(dataclasses.replace(settings, database_url=database_url))
        try:
            await ensure_demo_cohort(runtime)
            sandbox = runtime.channels[ChannelName.SANDBOX]
            assert isinstance(sandbox, SandboxChannel)
            session = DemoSession(runtime, sandbox, out)
            out.write(f"learnbot demo ({locale}): a learner on the sandbox channel\n")
            # The learner types commands in their own language, as the HELP text shows them.
            await session.say(f"{help_word(Command.JOIN, locale)} {DEMO_JOIN_CODE}")
            await session.say(payload=f"lang:{locale}")
            await session.say(payload="role:technical")
            await session.say(DEMO_COUNTRY)
            await session.say(payload="skip")
            # The course opens with the pre-assessment (one answer per item, no verdict), then
            # lesson 1 proper (a wrong answer, feedback, the right one). The other lessons are
            # taken quietly; then the post-assessment and the survey, ungraded, and progress.
            course = next(iter(runtime.courses.values()))
            teaching = course.teaching_lessons()
            for lesson_id in course.lessons:
                lesson = course.lessons[lesson_id]
                shown = lesson_id not in teaching or lesson_id == teaching[0]
                if lesson_id == teaching[1 % len(teaching)] and len(teaching) > 1:
                    out.write(f"\n(... lessons 2 to {len(teaching)}, taken the same way ...)\n")
                session.quiet = not shown
                if lesson_id != next(iter(course.lessons)):
                    await session.say(help_word(Command.NEXT, locale))
                for index, question in enumerate(lesson.questions):
                    wrong_first = index == 0 and lesson.type == "lesson" and shown
                    await session.answer(question, locale, wrong_first=wrong_first)
                session.quiet = False
                if lesson_id == teaching[0]:
                    await session.say(help_word(Command.PROGRESS, locale))
            await session.say(help_word(Command.PROGRESS, locale))
        finally:
            await runtime.close()
