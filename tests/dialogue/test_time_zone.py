"""The learner's own time zone: asked at joining a scheduled cohort, changed with ZONE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.dialogue import Dialogue
from bot.domain import ChannelName, OutboundMessage
from bot.i18n import FSI, PDI, UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import load_courses
from bot.lessons.render import render
from bot.lessons.sms import sms_encoding
from bot.store.tables import deliveries, enrollments, learners
from scheduler.plan_job import plan_once
from tests.dialogue.conftest import ROOT, Chat, joined

# Monday 2 March 2026, 06:15 UTC: 09:15 in Nairobi (UTC+3), 06:15 in Dakar (UTC+0),
# 07:15 in Kinshasa (UTC+1), 08:15 in Lubumbashi (UTC+2).
NOW = datetime(2026, 3, 2, 6, 15, tzinfo=UTC)


@pytest.fixture
async def dialogue(engine: AsyncEngine, lessons_dir: Path) -> AsyncIterator[Dialogue]:
    """A Dialogue at NOW with a scheduled Nairobi cohort SCHED and the self-paced TEAM1."""
    courses = load_courses(lessons_dir)
    content = load_translations(courses.values(), lessons_dir.parent / "locales")
    dialogue = Dialogue(engine, courses, content, UiCatalogs(ROOT / "locales"), clock=lambda: NOW)
    await dialogue.create_cohort(
        name="Scheduled",
        join_code="sched",
        course_ids=["basics"],
        time_zone="Africa/Nairobi",
        pacing="scheduled",
    )
    await dialogue.create_cohort(name="Team one", join_code="team1", course_ids=["basics"])
    try:
        yield dialogue
    finally:
        await dialogue.aclose()


def telegram(dialogue: Dialogue, chat_id: str = "5550100") -> Chat:
    """A Telegram learner: a chat id, no phone number."""
    return Chat(dialogue, chat_id, ChannelName.TELEGRAM)


async def to_country(chat: Chat, language: str = "1", code: str = "SCHED") -> None:
    """Join, choose a language, skip the role: the country question is open."""
    await chat.send(f"JOIN {code}")
    await chat.send(language)
    reply = await chat.say("SKIP")
    if language == "1":
        assert "Which country" in reply


def labels(reply: OutboundMessage) -> list[str]:
    return [button.label for button in reply.buttons]


async def profile_events(chat: Chat) -> list[Any]:
    learner = await chat.learner()
    return [e for e in await chat.events(learner.learner_key) if e.type == "profile_updated"]


async def test_asked_after_the_country_with_each_clock_and_its_time(chat: Chat) -> None:
    await to_country(chat)
    replies = await chat.send("CD")  # Congo - Kinshasa: two clocks
    question = replies[-1]
    assert "What time is it where you are?" in question.text
    assert labels(question) == ["Kinshasa — 7:15\u202fAM", "Lubumbashi — 8:15\u202fAM", "Skip"]
    assert [b.payload for b in question.buttons] == [
        "p:zone:tz:Africa/Kinshasa",
        "p:zone:tz:Africa/Lubumbashi",
        "p:zone:skip",
    ]
    assert (await chat.learner()).dialogue_state == "zone>gender"

    answer = await chat.say("2")
    assert "Time zone set: Lubumbashi (local time 8:15\u202fAM). Send ZONE to change it." in answer
    assert "What is your gender?" in answer
    learner = await chat.learner()
    assert (learner.time_zone, learner.profile_country) == ("Africa/Lubumbashi", "CD")
    # The event says what changed, never the zone itself.
    assert [e.detail for e in await profile_events(chat)] == [
        {"field": "country"},
        {"field": "time_zone"},
    ]

    finished = await chat.say("SKIP")
    assert "Your first lesson will arrive on the cohort's schedule." in finished


async def test_on_sms_the_choices_are_numbered_lines_in_one_gsm7_segment(chat: Chat) -> None:
    await to_country(chat)
    [sms] = render((await chat.send("CD"))[-1])
    assert sms.text.endswith("\n\n1) Kinshasa - 7:15 AM\n2) Lubumbashi - 8:15 AM\n3) Skip")
    assert (sms_encoding(sms.text), sms.segments) == ("GSM-7", 1)


async def test_a_country_with_one_clock_is_set_in_one_line(dialogue: Dialogue) -> None:
    learner = telegram(dialogue)
    await to_country(learner)
    replies = await learner.send("Senegal")
    assert [r.text for r in replies] == [
        "Time zone set: Dakar (local time 6:15\u202fAM). Send ZONE to change it.",
        "What is your gender?",
    ]
    assert (await learner.learner()).time_zone == "Africa/Dakar"


@pytest.mark.parametrize(
    ("reply", "payload", "zone"),
    [
        ("1", None, "Africa/Kinshasa"),
        ("", "tz:Africa/Lubumbashi", "Africa/Lubumbashi"),
        ("lubumbashi", None, "Africa/Lubumbashi"),
        ("Le Caire", None, "Africa/Cairo"),  # a city in another shipped language
        ("+2", None, "Africa/Lubumbashi"),  # an offered clock at that offset
        ("UTC+3", None, "Etc/GMT-3"),  # none offered: exactly UTC+3, no DST guessed
        ("gmt -5", None, "Etc/GMT+5"),
        ("+05:30", None, "Asia/Colombo"),  # no whole hour: a real zone at that offset now
        ("Kenya", None, "Africa/Nairobi"),  # a country with one clock
    ],
)
async def test_a_choice_number_button_city_offset_or_country_sets_the_zone(
    chat: Chat, reply: str, payload: str | None, zone: str
) -> None:
    await to_country(chat)
    await chat.send("CD")
    answer = await chat.say(reply, payload=payload)
    assert "Time zone set:" in answer and "What is your gender?" in answer
    assert (await chat.learner()).time_zone == zone


@pytest.mark.parametrize(("reply", "payload"), [("SKIP", None), ("3", None), ("", "skip")])
async def test_skipping_keeps_the_cohort_zone(chat: Chat, reply: str, payload: str | None) -> None:
    await to_country(chat)
    await chat.send("CD")
    answer = await chat.say(reply, payload=payload)
    assert answer == "What is your gender?"
    learner = await chat.learner()
    assert (learner.time_zone, learner.dialogue_state) == (None, "profile:gender")
    assert [e.detail for e in await profile_events(chat)] == [{"field": "country"}]


async def test_an_answer_it_cannot_read_asks_again_and_changes_nothing(chat: Chat) -> None:
    await to_country(chat)
    await chat.send("CD")
    replies = await chat.send("Atlantis")
    assert "Sorry, I did not understand. Choose a number" in replies[0].text
    assert labels(replies[-1])[:2] == ["Kinshasa — 7:15\u202fAM", "Lubumbashi — 8:15\u202fAM"]
    for wrong in ("9", "+25", "UTC+3:20"):
        assert "Sorry, I did not understand" in await chat.say(wrong)
    learner = await chat.learner()
    assert (learner.time_zone, learner.dialogue_state) == (None, "zone>gender")


async def test_a_telegram_learner_without_a_country_is_asked_with_the_cohort_clock(
    dialogue: Dialogue,
) -> None:
    learner = telegram(dialogue)
    await to_country(learner)
    question = (await learner.send("SKIP"))[-1]
    assert labels(question) == ["Nairobi — 9:15\u202fAM", "Skip"]
    answer = await learner.say("Dakar")
    assert "Time zone set: Dakar" in answer and "What is your gender?" in answer


async def test_a_number_with_one_zone_is_not_asked(dialogue: Dialogue) -> None:
    kenyan = Chat(dialogue, "+254700000001")
    await to_country(kenyan)
    assert await kenyan.say("SKIP") == "What is your gender?"
    # Naming the number's own country asks nothing and says nothing either.
    other = Chat(dialogue, "+254700000002")
    await to_country(other)
    assert await other.say("Kenya") == "What is your gender?"
    assert (await other.learner()).time_zone is None  # still derived from the number


async def test_a_number_and_a_country_that_disagree_go_by_the_country(dialogue: Dialogue) -> None:
    kenyan = Chat(dialogue, "+254700000003")
    await to_country(kenyan)
    assert "Time zone set: Dakar" in await kenyan.say("Senegal")
    assert (await kenyan.learner()).time_zone == "Africa/Dakar"


async def test_a_self_paced_cohort_does_not_ask(dialogue: Dialogue) -> None:
    learner = telegram(dialogue)
    await to_country(learner, code="TEAM1")
    assert await learner.say("CD") == "What is your gender?"


async def test_a_later_scheduled_cohort_asks_right_after_joining(dialogue: Dialogue) -> None:
    learner = telegram(dialogue)
    await learner.send("JOIN TEAM1")
    await learner.send("1")
    for _ in range(3):
        await learner.send("SKIP")  # role, country, gender: the self-paced lesson starts
    replies = await learner.send("JOIN SCHED")
    assert replies[0].text == "Welcome to Scheduled!"
    assert labels(replies[-1]) == ["Nairobi — 9:15\u202fAM", "Skip"]
    answer = await learner.say("1")
    assert "Time zone set: Nairobi" in answer
    assert "Your first lesson will arrive on the cohort's schedule." in answer


async def test_the_keyword_works_from_any_state_and_resumes(dialogue: Dialogue) -> None:
    learner = Chat(dialogue, "+15550177")
    lesson = await joined(learner)  # TEAM1, self-paced: the first question is open
    assert "Where do you start?" in lesson
    question = (await learner.send("fuseau"))[-1]  # French keyword, English learner
    assert "What time is it where you are?" in question.text
    assert labels(question) == ["UTC — 6:15\u202fAM", "Skip"]  # TEAM1's zone
    answer = await learner.say("Dakar")
    assert "Time zone set: Dakar (local time 6:15\u202fAM)." in answer
    assert "Where do you start?" in answer  # back to the open question
    assert (await learner.learner()).time_zone == "Africa/Dakar"

    # Skipping from the keyword says what stays.
    await learner.send("ZONE")
    unchanged = await learner.say("SKIP")
    assert "Time zone unchanged: Dakar (local time 6:15\u202fAM)." in unchanged
    assert (await learner.learner()).time_zone == "Africa/Dakar"


async def test_the_keyword_in_the_middle_of_the_profile_keeps_its_place(chat: Chat) -> None:
    await to_country(chat)
    await chat.send("CD")
    assert "What time is it" in await chat.say("TIME ZONE")
    assert "What is your gender?" in await chat.say("Kinshasa")


async def test_help_lists_the_zone_keyword(chat: Chat) -> None:
    assert "ZONE: set your time zone" in await chat.say("HELP")


async def test_the_choices_in_swahili_and_arabic(dialogue: Dialogue) -> None:
    swahili = Chat(dialogue, "+15550181")
    await to_country(swahili, language="Kiswahili")
    sw = (await swahili.send("CD"))[-1]
    assert sw.locale == "sw" and sw.text.startswith("Ni saa ngapi")
    assert labels(sw) == ["Kinshasa — 07:15", "Lubumbashi — 08:15", "Ruka"]
    assert "Saa za eneo zimewekwa" in await swahili.say("2")

    arabic = Chat(dialogue, "+15550182")
    await to_country(arabic, language="العربية")
    ar = (await arabic.send("CD"))[-1]
    assert ar.locale == "ar" and "UTC+3" in ar.text and f"{FSI}UTC+3{PDI}" in ar.text
    # Babel's Arabic city names; the time is isolated so it reads left to right.
    assert labels(ar)[:2] == [
        f"{FSI}كينشاسا{PDI} — {FSI}7:15 ص{PDI}",
        f"{FSI}لومبباشا{PDI} — {FSI}8:15 ص{PDI}",
    ]
    assert ar.text.startswith("كم الساعة عندك الآن؟")
    set_reply = await arabic.say("\u0661")  # Arabic-Indic digit one
    assert "تم ضبط المنطقة الزمنية" in set_reply and "كينشاسا" in set_reply
    assert "التوقيت" in set_reply  # the Arabic keyword to change it
    assert (await arabic.learner()).time_zone == "Africa/Kinshasa"


async def test_a_zone_change_moves_the_next_planned_slot_to_the_new_clock(
    dialogue: Dialogue,
) -> None:
    learner = telegram(dialogue)
    await to_country(learner)
    await learner.send("Kenya")  # one clock: Nairobi, set at once
    await learner.send("SKIP")
    tuesday_nairobi = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)  # 09:00 in Nairobi
    async with dialogue.engine.begin() as conn:
        await conn.execute(update(enrollments).values(next_due_at=tuesday_nairobi))
    await learner.send("ZONE")
    await learner.send("Dakar")
    async with dialogue.engine.connect() as conn:
        moved = (await conn.execute(select(enrollments.c.next_due_at))).scalar_one()
    assert moved == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # 09:00 in Dakar, same day


async def test_a_cohort_spanning_nairobi_and_dakar_gets_0900_in_each(dialogue: Dialogue) -> None:
    nairobi, dakar = telegram(dialogue, "101"), telegram(dialogue, "102")
    for learner, answer in ((nairobi, "1"), (dakar, "Dakar")):
        await to_country(learner)
        await learner.send("SKIP")  # no country: asked, with the cohort's clock first
        assert "Time zone set:" in await learner.say(answer)
        await learner.send("SKIP")
    engine, courses = dialogue.engine, {"basics": ["users", "survey"]}
    grace = timedelta(hours=6)
    await plan_once(engine, courses, now=NOW, misfire_grace=grace)  # first look: next slots
    # Dakar's Monday 09:00 (09:00 UTC), then Nairobi's Tuesday 09:00 (06:00 UTC).
    for tick in (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), datetime(2026, 3, 3, 6, 0, tzinfo=UTC)):
        await plan_once(engine, courses, now=tick, misfire_grace=grace)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(learners.c.address, learners.c.time_zone, deliveries.c.due_at)
                .join(learners, learners.c.id == deliveries.c.learner_id)
                .order_by(deliveries.c.due_at)
            )
        ).all()
    local = [
        (row.address, row.due_at.astimezone(ZoneInfo(row.time_zone)).strftime("%a %H:%M"))
        for row in rows
    ]
    # Nairobi's Monday 09:00 had passed at NOW (09:15): its first slot is Tuesday.
    assert local == [("102", "Mon 09:00"), ("101", "Tue 09:00")]
