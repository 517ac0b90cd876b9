"""Twilio webhooks through the Starlette routes: signatures, inbound turns, status callbacks.

Requests are signed with the twilio SDK's own `RequestValidator.compute_signature`, for the
public URL, and posted to an app reached under another host (as behind a proxy). Replies go
out through the real `TwilioChannel` to a fake Twilio REST server on loopback.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from twilio.request_validator import HMAC_SHA256, RequestValidator

from bot.channels.base import Channel
from bot.channels.twilio import TwilioChannel
from bot.config import Settings
from bot.delivery import deliver
from bot.dialogue import Dialogue
from bot.domain import ChannelName, DeliveryStatus, LearnerStatus, OutboundMessage
from bot.i18n import UiCatalogs
from bot.lessons.catalogs import load_translations
from bot.lessons.loader import load_courses
from bot.lessons.sms import segment_count
from bot.runtime import DEMO_JOIN_CODE, _pathway_order
from bot.store.db import utcnow
from bot.store.tables import deliveries, events, learners, processed_inbound
from bot.web.twilio import twilio_routes
from tests.fakes.twilio import FakeTwilio
from tests.store.rows import insert_learner

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "AC" + "1" * 32
TOKEN = "test-auth-token"
PUBLIC_URL = "https://learnbot.example.org"
SMS_FROM = "+15550001111"
WHATSAPP_FROM = "whatsapp:+15550002222"
LEARNER = "+254712345678"


class Harness:
    """The app with its Twilio routes, the fake Twilio behind it, and Twilio's side of webhooks."""

    _sids = itertools.count(1)

    def __init__(
        self, http: httpx.AsyncClient, fake: FakeTwilio, engine: AsyncEngine, settings: Settings
    ) -> None:
        self.http = http
        self.fake = fake
        self.engine = engine
        self.settings = settings
        self.validator = RequestValidator(TOKEN)

    def new_sid(self) -> str:
        return f"SM{next(self._sids):032d}"

    async def post(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        signature: str | None = None,
        signed_url: str | None = None,
    ) -> httpx.Response:
        """Post a form as Twilio does; signed for the public URL unless told otherwise."""
        url = signed_url if signed_url is not None else PUBLIC_URL + path
        headers = {}
        if signature != "":
            headers["X-Twilio-Signature"] = signature or self.validator.compute_signature(
                url, dict(params)
            )
        return await self.http.post(path, data=dict(params), headers=headers)

    async def inbound(
        self, channel: ChannelName, text: str, *, sender: str = LEARNER, sid: str | None = None
    ) -> httpx.Response:
        """A learner's message arriving on the SMS or WhatsApp webhook."""
        prefix = "whatsapp:" if channel == ChannelName.WHATSAPP else ""
        to = WHATSAPP_FROM if channel == ChannelName.WHATSAPP else SMS_FROM
        params = {
            "MessageSid": sid or self.new_sid(),
            "AccountSid": ACCOUNT,
            "From": prefix + sender,
            "To": to,
            "Body": text,
            "NumMedia": "0",
        }
        return await self.post(f"/webhooks/twilio/{channel}", params)

    async def status(self, sid: str, status: str, error_code: str | None = None) -> httpx.Response:
        """A status callback for one outbound message."""
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT, "To": LEARNER}
        if error_code is not None:
            params["ErrorCode"] = error_code
        return await self.post("/webhooks/twilio/status", params)

    async def count(self, table: Any) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    """A fake Twilio REST API on loopback."""
    async with FakeTwilio() as server:
        yield server


@pytest.fixture
async def harness(engine: AsyncEngine, fake: FakeTwilio) -> AsyncIterator[Harness]:
    """The shipped course, a DEMO cohort, and the Twilio routes replying through the fake."""
    settings = Settings(
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_sms_from=SMS_FROM,
        twilio_whatsapp_from=WHATSAPP_FROM,
        twilio_api_url=fake.url,
        sms_max_segments=3,
    )
    courses = load_courses(ROOT / "lessons")
    content = load_translations(courses.values(), ROOT / "locales")
    dialogue = Dialogue(engine, courses, content, UiCatalogs(ROOT / "locales"))
    await dialogue.create_cohort(
        name="Demo cohort", join_code=DEMO_JOIN_CODE, course_ids=_pathway_order(courses)
    )
    sms = TwilioChannel.sms_from_settings(settings)
    whatsapp = TwilioChannel.whatsapp_from_settings(settings)
    channels: dict[ChannelName, Channel] = {ChannelName.SMS: sms, ChannelName.WHATSAPP: whatsapp}

    async def on_replies(replies: Sequence[OutboundMessage]) -> None:
        await deliver(replies, channels, sms_max_segments=settings.sms_max_segments)

    app = Starlette(
        routes=twilio_routes(
            settings=settings,
            dialogue=dialogue,
            engine=engine,
            on_replies=on_replies,
            unmatched_status_waits=SHORT_WAITS,
        )
    )
    # Another host than the public URL: the signature must be checked against the public one.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.1.2.3:8080") as http:
        yield Harness(http, fake, engine, settings)
    await sms.aclose()
    await whatsapp.aclose()
    await dialogue.aclose()


# Status callbacks for a SID not (yet) in the outbox look again after these pauses.
SHORT_WAITS = (0.02, 0.04, 0.08, 0.16)


# --- signatures --------------------------------------------------------------------------------


async def test_signed_inbound_sms_is_handled_and_answered_with_empty_twiml(
    harness: Harness,
) -> None:
    response = await harness.inbound(ChannelName.SMS, "JOIN DEMO")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response/>")
    sent = harness.fake.messages
    assert [m.params["To"] for m in sent] == [LEARNER, LEARNER]
    assert "Welcome to Demo cohort!" in sent[0].params["Body"]
    assert await harness.count(learners) == 1


@pytest.mark.parametrize(
    "how",
    ["missing", "forged", "other token", "signed for the proxy's inner host", "tampered body"],
)
async def test_bad_signature_is_refused_and_nothing_is_stored(harness: Harness, how: str) -> None:
    path = "/webhooks/twilio/sms"
    params = {"MessageSid": harness.new_sid(), "From": LEARNER, "Body": "JOIN DEMO"}
    if how == "missing":
        response = await harness.post(path, params, signature="")
    elif how == "forged":
        response = await harness.post(path, params, signature="bm90IGEgc2lnbmF0dXJl")
    elif how == "other token":
        other = RequestValidator("someone-elses-token").compute_signature(PUBLIC_URL + path, params)
        response = await harness.post(path, params, signature=other)
    elif how == "signed for the proxy's inner host":
        response = await harness.post(path, params, signed_url="http://10.1.2.3:8080" + path)
    else:
        good = harness.validator.compute_signature(PUBLIC_URL + path, params)
        response = await harness.post(path, {**params, "Body": "STOP"}, signature=good)

    assert response.status_code == 403
    assert harness.fake.messages == []
    for table in (learners, processed_inbound, deliveries, events):
        assert await harness.count(table) == 0


async def test_forged_status_callback_changes_nothing(harness: Harness) -> None:
    _, sid = await delivery_sent(harness)

    response = await harness.post(
        "/webhooks/twilio/status",
        {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "21610", "To": LEARNER},
        signature="Zm9yZ2Vk",
    )

    assert response.status_code == 403
    assert await delivery_of(harness, sid) == ("sent", None)
    assert (await learner_of(harness)).status == LearnerStatus.ACTIVE


async def test_query_string_is_part_of_what_is_signed(harness: Harness) -> None:
    path = "/webhooks/twilio/sms?source=carrier"
    params = {"MessageSid": harness.new_sid(), "From": LEARNER, "Body": "HELP"}

    signed = await harness.post(path, params)
    unsigned_query = await harness.post(
        path, params, signature=harness.validator.compute_signature(PUBLIC_URL + path[:20], params)
    )

    assert signed.status_code == 200
    assert unsigned_query.status_code == 403


async def test_a_signature_over_the_url_with_its_default_port_is_accepted(
    harness: Harness,
) -> None:
    # Twilio sometimes signs https://host:443/...: the SDK accepts both forms, and so do we.
    path = "/webhooks/twilio/sms"
    params = {"MessageSid": harness.new_sid(), "From": LEARNER, "Body": "JOIN DEMO"}

    response = await harness.post(
        path, params, signed_url=PUBLIC_URL.replace(".org", ".org:443") + path
    )

    assert response.status_code == 200
    assert await harness.count(learners) == 1


async def test_hmac_sha256_signatures_are_checked_when_twilio_says_so(harness: Harness) -> None:
    path = "/webhooks/twilio/sms"
    params = {"MessageSid": harness.new_sid(), "From": LEARNER, "Body": "JOIN DEMO"}
    sha256 = harness.validator.compute_signature(PUBLIC_URL + path, params, HMAC_SHA256)
    sha1 = harness.validator.compute_signature(PUBLIC_URL + path, params)
    settings = {"X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_SHA256"}

    wrong = await harness.http.post(
        path, data=params, headers={"X-Twilio-Signature": sha1, **settings}
    )
    right = await harness.http.post(
        path, data=params, headers={"X-Twilio-Signature": sha256, **settings}
    )

    assert (wrong.status_code, right.status_code) == (403, 200)


async def test_non_ascii_text_is_decoded_exactly_as_twilio_signed_it(harness: Harness) -> None:
    path = "/webhooks/twilio/sms"
    body = "Habari ya asubuhi, ça va? ✓"
    params = {"MessageSid": harness.new_sid(), "From": LEARNER, "Body": body}
    tampered = harness.validator.compute_signature(PUBLIC_URL + path, {**params, "Body": "?"})

    assert (await harness.post(path, params, signature=tampered)).status_code == 403
    assert (await harness.post(path, params)).status_code == 200


# --- inbound -----------------------------------------------------------------------------------


async def test_whatsapp_sender_is_stored_without_the_prefix(harness: Harness) -> None:
    response = await harness.inbound(ChannelName.WHATSAPP, "JOIN DEMO")

    assert response.status_code == 200
    learner = await learner_of(harness)
    assert (learner.channel, learner.address) == ("whatsapp", LEARNER)
    assert learner.last_inbound_at is not None  # the WhatsApp window starts here
    assert {m.params["To"] for m in harness.fake.messages} == {"whatsapp:" + LEARNER}
    assert {m.params["From"] for m in harness.fake.messages} == {WHATSAPP_FROM}


async def test_duplicate_message_sid_is_acknowledged_and_changes_nothing(
    harness: Harness,
) -> None:
    await harness.inbound(ChannelName.SMS, "JOIN DEMO")
    sid = harness.new_sid()
    first = await harness.inbound(ChannelName.SMS, "1", sid=sid)
    sent_after_first = len(harness.fake.messages)
    learner_after_first = await learner_of(harness)
    event_count = await harness.count(events)

    again = await harness.inbound(ChannelName.SMS, "1", sid=sid)

    assert first.status_code == again.status_code == 200
    assert again.text.endswith("<Response/>")
    assert len(harness.fake.messages) == sent_after_first
    assert await learner_of(harness) == learner_after_first
    assert await harness.count(events) == event_count


async def test_missing_sender_is_a_bad_request(harness: Harness) -> None:
    response = await harness.post("/webhooks/twilio/sms", {"MessageSid": harness.new_sid()})

    assert response.status_code == 400
    assert await harness.count(learners) == 0


# --- status callbacks --------------------------------------------------------------------------


async def delivery_sent(
    harness: Harness, status: DeliveryStatus = DeliveryStatus.SENT
) -> tuple[dict[str, Any], str]:
    """A learner on SMS and one delivery the dispatcher sent, known by its MessageSid."""
    sid = harness.new_sid()
    now = utcnow()
    async with harness.engine.begin() as conn:
        learner = await insert_learner(conn, address=LEARNER)
        await conn.execute(
            deliveries.insert(),
            {
                "learner_id": learner["id"],
                "lesson_id": "user-centred-design",
                "kind": "lesson",
                "channel": "sms",
                "status": str(status),
                "priority": 1,
                "due_at": now,
                "provider_message_id": sid,
                "segments": 2,
                "created_at": now,
                "updated_at": now,
            },
        )
    return learner, sid


async def delivery_of(harness: Harness, sid: str) -> tuple[str, str | None]:
    async with harness.engine.connect() as conn:
        row = (
            await conn.execute(
                select(deliveries.c.status, deliveries.c.error_code).where(
                    deliveries.c.provider_message_id == sid
                )
            )
        ).one()
    return row.status, row.error_code


async def learner_of(harness: Harness) -> Any:
    async with harness.engine.connect() as conn:
        return (await conn.execute(select(learners).where(learners.c.address == LEARNER))).one()


async def test_status_callbacks_move_the_delivery_forward(harness: Harness) -> None:
    _, sid = await delivery_sent(harness, DeliveryStatus.SENDING)
    seen = []
    for status in ("queued", "sent", "delivered", "read"):
        response = await harness.status(sid, status)
        assert response.status_code == 200
        seen.append(await delivery_of(harness, sid))

    assert seen == [("queued", None), ("sent", None), ("delivered", None), ("read", None)]


@pytest.mark.parametrize(
    ("late", "kept"),
    [("sent", "delivered"), ("queued", "delivered"), ("delivered", "read"), ("read", "failed")],
)
async def test_a_late_status_never_moves_a_delivery_back(
    harness: Harness, late: str, kept: str
) -> None:
    _, sid = await delivery_sent(harness)
    await harness.status(sid, kept, "30008" if kept == "failed" else None)

    response = await harness.status(sid, late)

    assert response.status_code == 200
    assert (await delivery_of(harness, sid))[0] == kept


@pytest.mark.parametrize(
    ("status", "code", "learner_status", "flag", "delivery_status"),
    [
        ("undelivered", "21610", LearnerStatus.STOPPED, None, "undelivered"),
        ("failed", "21211", LearnerStatus.UNREACHABLE, "unreachable", "failed"),
        ("failed", "21614", LearnerStatus.UNREACHABLE, "unreachable", "failed"),
        ("undelivered", "30003", LearnerStatus.UNREACHABLE, "unreachable", "undelivered"),
        ("undelivered", "30005", LearnerStatus.UNREACHABLE, "unreachable", "undelivered"),
        ("undelivered", "30006", LearnerStatus.UNREACHABLE, "unreachable", "undelivered"),
        ("undelivered", "30007", LearnerStatus.ACTIVE, "review", "undelivered"),
        ("failed", "63016", LearnerStatus.ACTIVE, None, "held"),
        ("undelivered", "30008", LearnerStatus.ACTIVE, None, "undelivered"),  # unknown error
    ],
)
async def test_status_error_codes_apply_the_failure_policy(
    harness: Harness,
    status: str,
    code: str,
    learner_status: LearnerStatus,
    flag: str | None,
    delivery_status: str,
) -> None:
    _, sid = await delivery_sent(harness)

    response = await harness.status(sid, status, code)

    assert response.status_code == 200
    assert await delivery_of(harness, sid) == (delivery_status, code)
    learner = await learner_of(harness)
    assert (learner.status, learner.flag) == (learner_status, flag)


async def test_error_for_a_message_without_an_outbox_row_still_reaches_the_learner(
    harness: Harness,
) -> None:
    # Direct replies have no delivery row: the learner is found by channel and number.
    await delivery_sent(harness)

    response = await harness.status(harness.new_sid(), "undelivered", "30005")

    assert response.status_code == 200
    assert (await learner_of(harness)).status == LearnerStatus.UNREACHABLE


async def test_a_callback_before_the_sid_is_written_waits_for_it(harness: Harness) -> None:
    # The dispatcher writes a batch's SIDs while it sends the next batch: Twilio can be faster.
    _, sid = await delivery_sent(harness)
    async with harness.engine.begin() as conn:
        await conn.execute(update(deliveries).values(provider_message_id=None, status="sending"))

    callback = asyncio.create_task(harness.status(sid, "undelivered", "30007"))
    await asyncio.sleep(0.05)
    assert not callback.done()  # still looking
    async with harness.engine.begin() as conn:
        await conn.execute(update(deliveries).values(provider_message_id=sid, status="sent"))
    response = await callback

    assert response.status_code == 200
    assert await delivery_of(harness, sid) == ("undelivered", "30007")
    assert (await learner_of(harness)).flag == "review"


async def test_untracked_statuses_and_unknown_sids_are_acknowledged(harness: Harness) -> None:
    _, sid = await delivery_sent(harness)

    accepted = await harness.status(sid, "accepted")
    unknown = await harness.status(harness.new_sid(), "delivered")

    assert accepted.status_code == unknown.status_code == 200
    assert await delivery_of(harness, sid) == ("sent", None)


# --- whole journeys ----------------------------------------------------------------------------


class Phone:
    """A learner's phone on SMS or WhatsApp: each message goes through the signed webhook."""

    def __init__(self, harness: Harness, channel: ChannelName) -> None:
        self.harness = harness
        self.channel = channel

    async def say(self, text: str) -> list[str]:
        """Send one message; the bodies Twilio was asked to send back, in order."""
        before = len(self.harness.fake.messages)
        response = await self.harness.inbound(self.channel, text)
        assert response.status_code == 200 and response.text.endswith("<Response/>")
        return [m.params["Body"] for m in self.harness.fake.messages[before:]]


@pytest.mark.parametrize(
    ("channel", "wrong", "right"), [(ChannelName.SMS, "2", "1"), (ChannelName.WHATSAPP, "B", "A")]
)
async def test_whole_journey_through_the_webhook(
    harness: Harness, channel: ChannelName, wrong: str, right: str
) -> None:
    phone = Phone(harness, channel)

    joined = await phone.say("JOIN DEMO")
    assert "Welcome to Demo cohort!" in joined[0]
    assert "1) English\n2) Français" in joined[-1]
    assert "Language set: English." in "\n".join(await phone.say("1"))
    for _ in range(3):  # role, country, gender
        lesson = await phone.say("SKIP")
    text = "\n".join(lesson)
    assert "Before you start: a quick check" in text
    assert "1) With the people who apply for permits\n2) With a new computer system" in text

    # The pre-assessment takes one answer per item and shows no verdict, wrong or right.
    wrong_reply = "\n".join(await phone.say(wrong))
    assert "Thank you for your answer." in wrong_reply and "Question 2 of 4" in wrong_reply
    assert "Not yet." not in wrong_reply and "Try again." not in wrong_reply
    right_reply = "\n".join(await phone.say(right))
    assert "Thank you for your answer." in right_reply and "Question 3 of 4" in right_reply
    assert "Right." not in right_reply and "Not quite." not in right_reply
    progress = "\n".join(await phone.say("PROGRESS"))
    assert "You have completed 0 of 8 lessons." in progress

    assert "You will not receive any more messages." in "\n".join(await phone.say("STOP"))
    assert await phone.say("hello") == []
    assert await phone.say("2") == []
    back = "\n".join(await phone.say("START"))
    assert "Welcome back!" in back and "Question 3 of 4" in back

    learner = await learner_of(harness)
    assert (learner.channel, learner.status) == (str(channel), LearnerStatus.ACTIVE)
    sent = harness.fake.messages
    expected_to = ("whatsapp:" if channel == ChannelName.WHATSAPP else "") + LEARNER
    assert {m.params["To"] for m in sent} == {expected_to}
    assert {m.params["StatusCallback"] for m in sent} == {PUBLIC_URL + "/webhooks/twilio/status"}
    if channel == ChannelName.SMS:
        # Every part fits LEARNBOT_SMS_MAX_SEGMENTS, and long ones are sent concatenated.
        # (The longest reply of this journey was a wrong answer's feedback with the question
        # again, 3 segments; the pre-assessment no longer gives one.)
        counts = [segment_count(m.params["Body"]) for m in sent]
        assert 1 < max(counts) <= harness.settings.sms_max_segments


OVERRIDES = "rc=5&rp=5xx,ct,rt&tt=15000"


@pytest.mark.parametrize(
    ("setting", "signed_with_fragment", "status"),
    [
        (OVERRIDES, True, 200),  # Twilio signed the URL as set in its console, with "#..."
        (OVERRIDES, False, 200),  # or without the fragment
        ("", True, 403),  # a fragment nobody configured is not accepted
    ],
)
async def test_a_url_with_connection_overrides_is_accepted_signed_either_way(
    engine: AsyncEngine, setting: str, signed_with_fragment: bool, status: int
) -> None:
    settings = Settings(
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_webhook_overrides=setting,
    )

    async def no_replies(replies: object) -> None:
        raise AssertionError("a status callback sends nothing")

    routes = twilio_routes(
        settings=settings,
        dialogue=None,  # type: ignore[arg-type]  # a status callback never reaches the dialogue
        engine=engine,
        on_replies=no_replies,
    )
    app = Starlette(routes=routes)
    path = "/webhooks/twilio/status"
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "accepted", "AccountSid": ACCOUNT}
    url = PUBLIC_URL + path + (f"#{OVERRIDES}" if signed_with_fragment else "")
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.post(path, data=params, headers={"X-Twilio-Signature": signature})

    assert response.status_code == status
