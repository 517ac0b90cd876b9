"""WhatsApp 63016 reported by a status callback: the template goes out once, the lesson follows.

Twilio often accepts a message (201, queued) and says later, in the status callback, that it
was outside the 24-hour window. Here the whole path is real: the dispatcher sends through
`TwilioChannel` to a fake Twilio REST server on loopback, callbacks and the learner's reply are
posted to the Starlette routes signed with twilio's `RequestValidator`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

from bot.channels.twilio import TwilioChannel
from bot.config import Settings
from bot.dialogue import Dialogue
from bot.domain import ChannelName, OutboundMessage
from bot.store.db import utcnow
from bot.store.tables import deliveries, enrollments, learners
from bot.web.twilio import twilio_routes
from scheduler.dispatcher import Dispatcher
from tests.fakes.twilio import FakeTwilio, SentMessage
from tests.scheduler.outbox_rows import (
    add_cohort,
    add_learner,
    add_lessons,
    lesson_row,
    make_dialogue,
    write_course,
)
from tests.web.test_twilio_webhooks import SHORT_WAITS

ACCOUNT = "AC" + "2" * 32
TOKEN = "window-auth-token"
PUBLIC_URL = "https://learnbot.example.org"
WHATSAPP_FROM = "whatsapp:+15550002222"
PHONE = "+254711000222"
TEMPLATE_SID = "HX" + "a" * 32


class Window:
    """A WhatsApp learner, the dispatcher and the Twilio routes, with Twilio's side of both."""

    _inbound_sids = itertools.count(1)

    def __init__(
        self,
        http: httpx.AsyncClient,
        fake: FakeTwilio,
        engine: AsyncEngine,
        dialogue: Dialogue,
        dispatcher: Dispatcher,
        learner_id: int,
        enrollment_id: int,
    ) -> None:
        self.http = http
        self.fake = fake
        self.engine = engine
        self.dialogue = dialogue
        self.dispatcher = dispatcher
        self.learner_id = learner_id
        self.enrollment_id = enrollment_id
        self.validator = RequestValidator(TOKEN)
        self.wakes = 0
        dialogue.on_enqueued = self._woken

    def _woken(self) -> None:
        self.wakes += 1

    async def post(self, path: str, params: dict[str, str]) -> None:
        signature = self.validator.compute_signature(PUBLIC_URL + path, params)
        response = await self.http.post(
            path, data=params, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == 200, response.text

    async def status(self, sid: str | None, status: str = "undelivered") -> None:
        """Twilio reports one outbound message outside the window (ErrorCode 63016)."""
        assert sid is not None
        await self.post(
            "/webhooks/twilio/status",
            {
                "MessageSid": sid,
                "MessageStatus": status,
                "ErrorCode": "63016",
                "AccountSid": ACCOUNT,
                "To": "whatsapp:" + PHONE,
            },
        )

    async def reply(self, text: str) -> None:
        """The learner writes on WhatsApp."""
        await self.post(
            "/webhooks/twilio/whatsapp",
            {
                "MessageSid": f"SM{next(self._inbound_sids):032d}",
                "AccountSid": ACCOUNT,
                "From": "whatsapp:" + PHONE,
                "To": WHATSAPP_FROM,
                "Body": text,
            },
        )

    async def queue(self, *lesson_ids: str) -> None:
        """Lessons the planner found due for the learner, in this order."""
        async with self.engine.begin() as conn:
            await add_lessons(
                conn,
                [
                    lesson_row(
                        self.learner_id,
                        self.enrollment_id,
                        lesson_id=lesson_id,
                        channel=ChannelName.WHATSAPP,
                        due_at=utcnow() - timedelta(seconds=len(lesson_ids) - number),
                    )
                    for number, lesson_id in enumerate(lesson_ids)
                ],
            )

    async def dispatch(self) -> list[SentMessage]:
        """Run the dispatcher until nothing is due: what it sent to Twilio."""
        before = len(self.fake.messages)
        await self.dispatcher.run_until_idle()
        return self.fake.messages[before:]

    async def rows(self) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(deliveries).order_by(deliveries.c.id))).all())

    async def open_question(self) -> int | None:
        async with self.engine.connect() as conn:
            found = await conn.execute(select(enrollments.c.question_index))
            return found.scalar_one()  # type: ignore[no-any-return]

    async def last_inbound_at(self) -> datetime | None:
        async with self.engine.connect() as conn:
            found = await conn.execute(select(learners.c.last_inbound_at))
            return found.scalar_one()  # type: ignore[no-any-return]


@pytest.fixture
async def window(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Window]:
    """A learner on WhatsApp whose window is open by our clock (they wrote two hours ago)."""
    async with FakeTwilio() as fake:
        settings = Settings(
            public_url=PUBLIC_URL,
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=TOKEN,
            twilio_whatsapp_from=WHATSAPP_FROM,
            twilio_api_url=fake.url,
        )
        dialogue = make_dialogue(
            engine,
            write_course(tmp_path),
            outbox_channels=frozenset({ChannelName.WHATSAPP}),
            whatsapp_templates={"en": TEMPLATE_SID},
        )
        whatsapp = TwilioChannel.whatsapp_from_settings(settings)
        dispatcher = Dispatcher(engine, {ChannelName.WHATSAPP: whatsapp}, dialogue)

        async def no_direct_replies(replies: Sequence[OutboundMessage]) -> None:
            raise AssertionError(f"WhatsApp replies go through the outbox, got {replies}")

        app = Starlette(
            routes=twilio_routes(
                settings=settings,
                dialogue=dialogue,
                engine=engine,
                on_replies=no_direct_replies,
                unmatched_status_waits=SHORT_WAITS,
            )
        )
        async with engine.begin() as conn:
            cohort = await add_cohort(conn)
            learner_id, enrollment_id = await add_learner(
                conn,
                cohort,
                channel=ChannelName.WHATSAPP,
                address=PHONE,
                last_inbound_at=utcnow() - timedelta(hours=2),
            )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.9") as http:
            yield Window(http, fake, engine, dialogue, dispatcher, learner_id, enrollment_id)
        await whatsapp.aclose()
        await dialogue.aclose()


def bodies(sent: Sequence[SentMessage]) -> list[str]:
    return [m.params.get("Body", "") for m in sent]


def is_template(message: SentMessage, title: str) -> bool:
    """A content template announcing the lesson `title`, and no free text."""
    params = message.params
    return (
        params.get("ContentSid") == TEMPLATE_SID
        and json.loads(params.get("ContentVariables", "{}")) == {"1": title}
        and "Body" not in params
    )


# --- tests -------------------------------------------------------------------------------------


async def test_the_template_goes_out_once_and_the_lesson_follows_the_reply(window: Window) -> None:
    await window.queue("users")
    lesson = await window.dispatch()
    assert bodies(lesson)[0].startswith("*Start with users*")
    assert all("ContentSid" not in m.params for m in lesson)  # our clock said the window is open

    for part in lesson:  # Twilio reports each part; the outbox row knows the last one's SID
        await window.status(part.sid)

    assert window.wakes == 1
    assert await window.last_inbound_at() is None  # the window is closed now
    assert await window.open_question() is None  # the "1" to the template is not an answer
    [template] = await window.dispatch()
    assert template.params["To"] == "whatsapp:" + PHONE
    assert is_template(template, "Start with users")
    held, announced = await window.rows()
    assert (held.kind, held.status, held.error_code) == ("lesson", "held", None)
    assert (announced.kind, announced.status, announced.provider_message_id) == (
        "template",
        "sent",
        template.sid,
    )

    await window.status(lesson[-1].sid)  # Twilio retries the callback
    await window.status(lesson[-1].sid, "failed")
    await window.status(template.sid)  # even a refused template begets no other
    assert await window.dispatch() == []
    assert window.wakes == 1
    assert [r.status for r in await window.rows()] == ["held", "undelivered"]

    await window.reply("1")
    again = await window.dispatch()
    assert bodies(again)[0].startswith("*Start with users*")
    assert not any("ContentSid" in m.params for m in again)
    assert (await window.rows())[0].status == "sent"
    assert await window.last_inbound_at() is not None
    assert await window.open_question() == 0


@pytest.mark.parametrize("when", ["before the template went", "after the template went"])
async def test_a_later_lesson_refused_while_the_template_is_unanswered_sends_none(
    window: Window, when: str
) -> None:
    await window.queue("users", "data")
    await window.dispatch()
    first, second = await window.rows()
    assert (first.status, second.status) == ("sent", "sent")

    await window.status(first.provider_message_id)
    if when == "before the template went":
        await window.status(second.provider_message_id)
    [template] = await window.dispatch()
    assert is_template(template, "Start with users")
    await window.status(second.provider_message_id)
    assert await window.dispatch() == []
    assert window.wakes == 1
    assert [(r.lesson_id, r.kind, r.status) for r in await window.rows()] == [
        ("users", "lesson", "held"),
        ("data", "lesson", "held"),
        ("users", "template", "sent"),
    ]

    await window.reply("1")
    released = bodies(await window.dispatch())
    assert released[0].startswith("*Start with users*")
    assert any(body.startswith("*Less data") for body in released)
    assert not any(body.startswith("Not quite") for body in released)


async def test_a_refused_reply_is_not_held_and_sends_nothing(window: Window) -> None:
    await window.reply("HELP")
    [answer] = await window.dispatch()
    assert answer.params["Body"].startswith("You can send:")

    await window.status(answer.sid)

    assert await window.dispatch() == []
    [reply] = await window.rows()
    assert (reply.kind, reply.status, reply.error_code) == ("reply", "undelivered", "63016")
    assert await window.last_inbound_at() is None
    await window.reply("HELP")  # the next message is answered, the stale reply is not resent
    assert bodies(await window.dispatch()) == [answer.params["Body"]]


async def test_a_late_callback_after_the_learner_wrote_sends_the_lesson_itself(
    window: Window,
) -> None:
    await window.queue("users")
    lesson = await window.dispatch()
    async with window.engine.begin() as conn:  # the learner wrote after the lesson went out
        await conn.execute(
            learners.update().values(last_inbound_at=utcnow() + timedelta(seconds=1))
        )

    await window.status(lesson[-1].sid)

    assert await window.last_inbound_at() is not None  # their window is open
    again = await window.dispatch()
    assert bodies(again) == bodies(lesson)
    assert not any("ContentSid" in m.params for m in again)
