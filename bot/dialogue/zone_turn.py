"""The time-zone step of a turn: when to ask, the choices, and setting the learner's zone."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from bot.dialogue import prompts
from bot.dialogue.context import TurnContext
from bot.dialogue.keywords import Command
from bot.dialogue.profile import SKIP_PAYLOAD, pick_button
from bot.dialogue.zones import (
    ZONE_PAYLOAD,
    country_zones,
    find_zone,
    local_time,
    parse_offset,
    phone_zone_choices,
    same_clock,
    zone_from_payload,
    zone_label,
)
from bot.domain import Button, ChannelName, EventType
from bot.store import repository as repo
from scheduler.timezones import learner_zone, zones_for_phone

ZONE = "zone"  # state "zone>gender" / "zone>lesson" / "zone" (keyword): what follows the choice
_PHONE_CHANNELS = frozenset({ChannelName.SMS.value, ChannelName.WHATSAPP.value})
_NO_COHORT_ZONE = "UTC"


class ZoneTurn(TurnContext):
    """Asking, reading and setting a learner's own time zone."""

    # --- what is known -----------------------------------------------------------------------

    def cohort_zone(self) -> str:
        """The zone of the learner's current cohort (UTC without one)."""
        return self.enrollment.time_zone if self.enrollment is not None else _NO_COHORT_ZONE

    def phone(self) -> str | None:
        """The learner's phone number (SMS, WhatsApp); Telegram chat ids are not numbers."""
        learner = self.learner
        return learner.address if learner.channel in _PHONE_CHANNELS else None

    def current_zone(self, cohort_zone: str | None = None) -> str:
        """The zone the planner uses for this learner in a cohort (scheduler.timezones)."""
        cohort = cohort_zone or self.cohort_zone()
        return learner_zone(self.learner.time_zone, self.phone(), cohort, channel=None)

    def zone_choices(self) -> tuple[str, ...]:
        """The clocks to offer: the country's, else the number's, else the cohort's."""
        country = self.learner.profile_country
        zones = country_zones(country) if country else ()
        phone = self.phone()
        if not zones and phone:
            zones = phone_zone_choices(phone)
        return zones or (self.cohort_zone(),)

    # --- asking ------------------------------------------------------------------------------

    async def offer_zone(self, after: str) -> bool:
        """At joining: ask the zone when it is not known; True if the question was asked.

        Only cohorts with a schedule send at a local time; a learner with a zone of their own
        (chosen, or from the CSV) or a number with one zone is not asked. A country with one
        clock is set at once, in one line.
        """
        enrollment = self.enrollment
        if enrollment is None or enrollment.pacing == repo.SELF_PACED or self.learner.time_zone:
            return False
        phone = self.phone()
        own = zones_for_phone(phone) if phone else ()
        country = self.learner.profile_country
        clocks = country_zones(country) if country else ()
        if len(own) == 1 and (not clocks or any(same_clock(own[0], z) for z in clocks)):
            return False  # the number already says it (and the country does not contradict it)
        if len(clocks) == 1:
            await self.set_zone(clocks[0])
            return False
        self.ask_zone(f"{ZONE}>{after}")
        return True

    def zone_buttons(self) -> tuple[Button, ...]:
        """One button per clock, "Nairobi — 9:15 AM", then Skip."""
        tr, locale = self.tr, self.locale
        buttons = [
            Button(
                tr.gettext("%(city)s — %(time)s")
                % {
                    "city": self.iso(zone_label(name, locale)),
                    "time": self.iso(local_time(name, self.now, locale)),
                },
                f"{ZONE_PAYLOAD}{name}",
            )
            for name in self.zone_choices()
        ]
        buttons.append(Button(tr.gettext("Skip"), SKIP_PAYLOAD))
        return tuple(buttons)

    def ask_zone(self, state: str) -> None:
        """Ask which clock is the learner's."""
        self.open_state(state)
        self.say(
            self.tr.gettext(
                "What time is it where you are? Choose your time zone, or write your city or "
                "your UTC offset (e.g. %(example)s)."
            )
            % {"example": self.iso("UTC+3")},
            buttons=prompts.tag(prompts.ZONE, self.zone_buttons()),
        )

    # --- reading and setting -----------------------------------------------------------------

    def read_zone(self) -> str | None:
        """The zone a reply picks (or SKIP_PAYLOAD): button, number, city, country or offset."""
        text, payload = self.message.text, self.message.payload
        if payload is not None:
            return SKIP_PAYLOAD if payload == SKIP_PAYLOAD else zone_from_payload(payload)
        if parse_offset(text) is None:  # "+3" is an offset, not choice number 3
            picked = pick_button(self.zone_buttons(), text, None)
            if picked is not None:
                return picked if picked == SKIP_PAYLOAD else zone_from_payload(picked)
        return find_zone(text, self.zone_choices(), self.now)

    async def set_zone(self, name: str) -> None:
        """Make `name` the learner's zone, move their next planned slots to it, and say so."""
        await self._move_next_slots(name)
        self.set_learner(time_zone=name)
        # The zone itself stays out of the event log (and so out of the export).
        self.event(EventType.PROFILE_UPDATED, detail={"field": "time_zone"})
        self.say(
            self.tr.gettext(
                "Time zone set: %(zone)s (local time %(time)s). Send %(word)s to change it."
            )
            % self._zone_values(name)
        )

    def say_zone_unchanged(self) -> None:
        """Skipped from the ZONE keyword: what stays."""
        self.say(
            self.tr.gettext("Time zone unchanged: %(zone)s (local time %(time)s).")
            % self._zone_values(self.current_zone())
        )

    def _zone_values(self, name: str) -> dict[str, str]:
        locale = self.locale
        return {
            "zone": self.iso(zone_label(name, locale)),
            "time": self.iso(local_time(name, self.now, locale)),
            "word": self.word(Command.ZONE),
        }

    async def _move_next_slots(self, name: str) -> None:
        # A planned next slot keeps its wall-clock time in the new zone (09:00 in Nairobi
        # becomes 09:00 in Dakar): the planner then sends at the new zone's 09:00 without
        # skipping a day or sending twice. Lessons already in the outbox keep their time.
        new = ZoneInfo(name)
        for enrollment_id, next_due_at, cohort_zone in await repo.scheduled_enrollments(
            self.conn, self.learner.id
        ):
            old = self.current_zone(cohort_zone)
            if same_clock(old, name):
                continue
            wall = next_due_at.astimezone(ZoneInfo(old)).replace(tzinfo=new)
            moved = wall.astimezone(UTC)
            await repo.update_enrollment(self.conn, enrollment_id, {"next_due_at": moved})
