"""One inbound message's turn: de-duplicate, find the learner, dispatch, write, reply."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from bot.dialogue import prompts
from bot.dialogue.context import BACK, as_async
from bot.dialogue.keywords import Command, Match, find_command, help_word, is_yes, yes_word
from bot.dialogue.lessons import LessonTurn
from bot.dialogue.profile import (
    SKIP_PAYLOAD,
    gender_buttons,
    parse_country,
    pick_button,
    role_buttons,
)
from bot.dialogue.zone_turn import ZONE, ZoneTurn
from bot.domain import Button, ChannelName, EventType, LearnerStatus, OutboundMessage
from bot.i18n import language_name
from bot.store import repository as repo
from bot.store.deliveries import enqueue_replies, requeue_held
from bot.store.inbound import mark_processed

# last_inbound_at is rewritten at most this often: it times WhatsApp's 24-hour window, where
# a minute early is harmless, and skipping the write saves a statement on most quiz replies.
LAST_INBOUND_PRECISION = timedelta(minutes=1)
# States kept in learners.dialogue_state between messages.
CONFIRM_DELETE = "confirm_delete"
LANGUAGE = "language"  # "language>profile" / "language>lesson": what follows the choice
PROFILE = "profile:"  # "profile:role", "profile:country", "profile:gender"
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")


class Turn(LessonTurn, ZoneTurn):
    """A whole turn: commands, joining, language, profile and zone on top of the lesson steps."""

    deleted = False

    # --- dispatch ----------------------------------------------------------------------------

    async def run(self) -> list[OutboundMessage]:
        """Handle the message: the replies, after writing what changed."""
        message = self.message
        if message.provider_id is not None and not await mark_processed(
            as_async(self.conn), str(message.channel), message.provider_id, received_at=self.now
        ):
            return []
        found = await repo.load_learner(self.conn, str(message.channel), message.address)
        released = 0
        if found is None:
            self.learner = await repo.create_learner(
                self.conn, str(message.channel), message.address, self.now
            )
        else:
            self.learner, self.enrollment = found
            last = self.learner.last_inbound_at
            if last is None or self.now - last >= LAST_INBOUND_PRECISION:
                self.learner_values["last_inbound_at"] = self.now
                if message.channel == ChannelName.WHATSAPP:
                    # The window is open again: lessons held behind a template go out now.
                    released = await requeue_held(self.conn, self.learner.id, self.now)
        match = _command(message.text)
        quiet = (
            released
            and (match is None or match.command == Command.NEXT)
            and self.learner.status == LearnerStatus.ACTIVE
            and (self.enrollment is None or self.enrollment.question_index is None)
        )
        if not quiet:
            # (Otherwise the "1" that answered the template needs no reply: the lesson follows.
            # So does NEXT: the held lesson is the next one; sending another too would put
            # it first, as a reply goes before bulk sends.)
            await self.dispatch(match)
        # Question buttons name their question (prompts.py), here as in scheduled lessons.
        self.replies = [prompts.tag_question(reply) for reply in self.replies]
        await self.flush()
        if message.channel in self.d.outbox_channels:
            await enqueue_replies(
                self.conn,
                learner_id=self.learner.id,
                channel=message.channel,
                messages=self.replies,
                now=self.now,
            )
            return []
        return self.replies

    async def dispatch(self, match: Match | None) -> None:
        """Route the message, then ask the open prompt again if something else came last."""
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
        self.back = (self.learner.dialogue_state or "").partition(BACK)[2] or None
        target: str | None = None
        if self.message.payload is not None:
            target = self.addressed(self.message.payload)
            if target is None:
                self.say(self.tr.gettext("That question has closed."))
        if self.message.payload is None or target is not None:
            await self.route(match, target)
        if not self.deleted and self.learner.status == LearnerStatus.ACTIVE:
            self.reask()

    def addressed(self, payload: str) -> str | None:
        """Which open prompt a button answers ("state" or "question"), or None: it has closed.

        The message's payload becomes the button's own value (`lang:fr`, `ans:2`).
        """
        prompt, value = prompts.parse(payload)
        open_state = prompts.for_state(self.learner.dialogue_state)
        target: str | None = None
        if prompt is None:  # an old-format button: only where it cannot be mistaken
            target = "state" if open_state in prompts.legacy_prompts(value) else None
        elif prompt == open_state:
            target = "state"
        elif prompt == self.open_question():
            target = "question"
        if target is not None:
            self.message = replace(self.message, payload=value)
        return target

    def open_question(self) -> str | None:
        """The prompt of the enrollment's open question, if one is open."""
        enrollment = self.enrollment
        if enrollment is None or enrollment.lesson_id is None or enrollment.question_index is None:
            return None
        loaded = self.d.courses.get(enrollment.course_id)
        lesson = loaded.lessons.get(enrollment.lesson_id) if loaded is not None else None
        if lesson is None or not 0 <= enrollment.question_index < len(lesson.questions):
            return None
        return prompts.for_question(lesson.id, lesson.questions[enrollment.question_index].id)

    def question_shown_last(self, state: str) -> bool:
        """Whether the open question came after the open menu (a scheduled lesson's)."""
        enrollment = self.enrollment
        if not state or enrollment is None or self.open_question() is None:
            return False
        sent, shown = enrollment.awaiting_since, self.learner.updated_at
        return sent is not None and shown is not None and sent > shown

    def reask(self) -> None:
        """Ask the open prompt again unless this turn's last message already asks it."""
        state = self.learner.dialogue_state
        wanted = prompts.for_state(state) or self.open_question()
        if wanted is None or (self.replies and prompts.asked(self.replies[-1]) == wanted):
            return
        current = (state or "").partition(BACK)[0]
        if current == CONFIRM_DELETE:
            self.ask_delete()
        elif current.startswith(LANGUAGE):
            self.ask_language(current)
        elif current.startswith(ZONE):
            self.ask_zone(current)
        elif current.startswith(PROFILE):
            self.ask_profile(current.removeprefix(PROFILE))
        else:
            enrollment = self.enrollment
            assert enrollment is not None and enrollment.lesson_id is not None
            assert enrollment.question_index is not None
            self.send_question(
                enrollment.course_id, enrollment.lesson_id, enrollment.question_index
            )

    def interrupt(self, state: str) -> None:
        """A command opens `state` over the open prompt: remember that one to ask after."""
        current = (self.learner.dialogue_state or "").partition(BACK)[0]
        if current and prompts.for_state(current) != prompts.for_state(state):
            self.back = current

    async def route(self, match: Match | None, target: str | None) -> None:
        """Confirmation, command, the prompt the message answers, or a hint."""
        text, payload = self.message.text, self.message.payload
        state = (self.learner.dialogue_state or "").partition(BACK)[0]
        if state == CONFIRM_DELETE:
            if (target == "state" and payload == "yes") or (payload is None and is_yes(text)):
                await self.delete()
                return
            self.close_state()
            self.say(self.tr.gettext("Deletion cancelled: your data is kept."))
            if target != "question" and (
                match is None or match.command == Command.DELETE or payload == "no"
            ):
                return
            state = (self.learner.dialogue_state or "").partition(BACK)[0]
        if match is not None and match.command != Command.SKIP:
            await self.command(match)
            return
        if target == "question" or (target is None and self.question_shown_last(state)):
            await self.answer()
        elif state.startswith(LANGUAGE):
            await self.choose_language(state)
        elif state.startswith(ZONE):
            await self.zone_reply(state, skip=match is not None)
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
        """Carry out a command."""
        command = match.command
        if command == Command.STOP:
            self.stop()
        elif command == Command.START:
            if match.argument and await self.joinable_cohort(match.argument):
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
            self.interrupt(CONFIRM_DELETE)
            self.ask_delete()
        elif command == Command.HELP:
            self.help()
        elif command == Command.LANGUAGE:
            state = (self.learner.dialogue_state or "").partition(BACK)[0]
            self.interrupt(LANGUAGE)
            self.ask_language(state if state.startswith(LANGUAGE) else LANGUAGE)
        elif command == Command.PROGRESS:
            await self.progress()
        elif command == Command.NEXT:
            if prompts.for_state(self.learner.dialogue_state) is None:
                await self.next_lesson()
            else:  # the open menu first (dispatch asks it again): no lesson over it
                self.say(self.tr.gettext("Please answer this question first:"))
        elif command == Command.ZONE:
            state = (self.learner.dialogue_state or "").partition(BACK)[0]
            self.interrupt(ZONE)
            self.ask_zone(state if state.startswith(ZONE) else ZONE)  # keep what was waiting

    def ask_delete(self) -> None:
        """Ask to confirm DELETE MY DATA."""
        self.open_state(CONFIRM_DELETE)
        tr = self.tr
        buttons = (Button(tr.gettext("Yes, delete"), "yes"), Button(tr.gettext("No"), "no"))
        self.say(
            tr.gettext(
                "This deletes your number, language, profile and written answers, and stops "
                "all messages. Reply %(yes)s to confirm; anything else cancels."
            )
            % {"yes": self.iso(yes_word(self.locale))},
            buttons=prompts.tag(prompts.CONFIRM_DELETE, buttons),
        )

    # --- commands ----------------------------------------------------------------------------

    def help(self) -> None:
        """HELP: the commands, with their keywords in the learner's language."""
        tr = self.tr
        lines = [
            tr.gettext("You can send:"),
            tr.gettext("%(word)s: the next lesson") % {"word": self.word(Command.NEXT)},
            tr.gettext("%(word)s: your progress and quiz score")
            % {"word": self.word(Command.PROGRESS)},
            tr.gettext("%(word)s: choose your language") % {"word": self.word(Command.LANGUAGE)},
            tr.gettext("%(word)s: set your time zone") % {"word": self.word(Command.ZONE)},
            tr.gettext("%(word)s + code: join a cohort") % {"word": self.word(Command.JOIN)},
            tr.gettext("%(word)s: stop all messages") % {"word": self.word(Command.STOP)},
            tr.gettext("%(word)s: receive messages again") % {"word": self.word(Command.START)},
            tr.gettext("%(word)s: delete your data") % {"word": self.word(Command.DELETE)},
            tr.gettext("To answer a question, reply with the number of your choice."),
        ]
        self.say("\n".join(lines))

    def stop(self) -> None:
        """STOP: no more messages until START."""
        self.set_learner(status=LearnerStatus.STOPPED.value, dialogue_state=None)
        self.event(EventType.STOPPED)
        self.say(
            self.tr.gettext(
                "You will not receive any more messages. Send %(start)s at any time to resume."
            )
            % {"start": self.word(Command.START)}
        )

    async def restart(self) -> None:
        """START: messages on again (if stopped), then where the learner was."""
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

    async def delete(self) -> None:
        """Confirmed DELETE MY DATA: personal data gone, a tombstone event, one goodbye."""
        learner, tr, locale = self.learner, self.tr, self.locale
        await repo.delete_personal_data(
            self.conn, learner, free_text_questions=self.d.free_text_questions, now=self.now
        )
        self.learner_values.clear()  # the row is final: nothing more may be written to it
        self.deleted = True
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

    async def joinable_cohort(self, code: str) -> repo.CohortRecord | None:
        """The cohort with this code, if this learner may join it from their channel."""
        cohort = await repo.find_cohort(self.conn, code)
        if cohort is None:
            return None
        if self.message.channel == ChannelName.SANDBOX and not cohort.open_to_sandbox:
            # The public sandbox joins only cohorts opened to it; a closed one is answered
            # like an unknown code, so the sandbox cannot tell which codes exist.
            return None
        return cohort

    async def join(self, code: str) -> None:
        """Join the cohort with this code, then language, profile and first lesson."""
        tr = self.tr
        cohort = await self.joinable_cohort(code)
        if cohort is None or cohort.status != "active":
            self.say(
                tr.gettext(
                    "No cohort has the code %(code)s. Check the code with your trainer and "
                    "send it again."
                )
                % {"code": self.iso(code.upper())}
            )
            return
        name = cohort.name_in(self.locale)  # the cohort's name in the learner's language
        existing = await repo.find_enrollment(self.conn, self.learner.id, cohort)
        if existing is not None:
            self.enrollment = existing
            self.say(tr.gettext("You are already in %(cohort)s.") % {"cohort": name})
            self.resume()
            return
        # The profile is asked once, at a learner's first cohort (no current enrollment).
        first = self.enrollment is None
        self.enrollment = await repo.create_enrollment(self.conn, self.learner.id, cohort, self.now)
        self.event(EventType.ENROLLED)
        self.say(tr.gettext("Welcome to %(cohort)s!") % {"cohort": name})
        after = "profile" if first else "lesson"
        if self.learner.locale is None:
            self.ask_language(f"{LANGUAGE}>{after}")
        else:
            await self.continue_with(after)

    async def continue_with(self, step: str) -> None:
        """The step after the language choice: the profile or the first lesson."""
        if step == "profile":
            self.ask_profile("role")
        elif step == "lesson" and not await self.offer_zone("lesson"):
            await self.first_lesson()

    def ask_language(self, state: str) -> None:
        """Offer every language in its own name."""
        self.open_state(state)
        buttons = [Button(language_name(code), f"lang:{code}") for code in self.d.locales]
        # Each language is named in its own language, so this prompt is the only text in ours.
        self.say(
            self.tr.gettext("Choose your language:"), buttons=prompts.tag(prompts.LANGUAGE, buttons)
        )

    async def choose_language(self, state: str) -> None:
        """Set the language picked by payload, number or name."""
        locale = self.d.match_language(self.message.text, self.message.payload)
        if locale is None:
            self.say(self.tr.gettext("Please choose one of the languages by its number."))
            self.ask_language(state)
            return
        self.set_learner(locale=locale)
        self.close_state()
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
        """Ask one optional profile question."""
        self.open_state(PROFILE + field)
        tr = self.tr
        if field == "role":
            self.say(
                tr.gettext(
                    "Three optional questions help us improve the course for people like you. "
                    "What is your role?"
                ),
                buttons=prompts.tag(field, role_buttons(tr)),
            )
        elif field == "country":
            self.say(
                tr.gettext("Which country do you work in? Write its name, or send %(skip)s.")
                % {"skip": self.word(Command.SKIP)},
                buttons=prompts.tag(field, (Button(tr.gettext("Skip"), SKIP_PAYLOAD),)),
            )
        else:
            self.say(
                tr.gettext("What is your gender?"), buttons=prompts.tag(field, gender_buttons(tr))
            )

    async def profile_reply(self, field: str, *, skip: bool) -> None:
        """Store (or skip) a profile answer and ask the next one."""
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
        if field == "country" and await self.offer_zone("gender"):
            return  # the time zone is asked next, then the gender
        if following is not None:
            self.ask_profile(following)
        else:
            self.close_state()
            self.say(self.tr.gettext("Thank you!"))
            await self.first_lesson()

    async def zone_reply(self, state: str, *, skip: bool) -> None:
        """Set (or skip) the time zone, then the step that was waiting for it."""
        if not skip:
            picked = self.read_zone()
            if picked is None:
                self.say(
                    self.tr.gettext(
                        "Sorry, I did not understand. Choose a number, write your city or your "
                        "UTC offset, or send %(skip)s."
                    )
                    % {"skip": self.word(Command.SKIP)}
                )
                self.ask_zone(state)
                return
            if picked == SKIP_PAYLOAD:
                skip = True
            else:
                await self.set_zone(picked)
        _, _, after = state.partition(">")
        self.close_state()
        if after == "gender":
            self.ask_profile("gender")
        elif after == "lesson":
            await self.first_lesson()
        else:
            if skip:
                self.say_zone_unchanged()
            self.resume()


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
