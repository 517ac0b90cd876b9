"""The event log reaches a real LRS (Ralph on 127.0.0.1): one statement per event, exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.analytics.xapi.log import CURSOR, events_after, forwarding_status
from bot.analytics.xapi.statements import StatementMapper
from bot.dialogue import Dialogue
from bot.domain import ChannelName
from bot.store import xapi_state
from bot.store.tables import events, xapi_cursor, xapi_parked
from scheduler.lrs_client import LrsClient
from scheduler.xapi_forwarder import XapiForwarder
from tests.fakes.ralph_lrs import RalphLrs, validate_with_ralph
from tests.scheduler.xapi_journeys import ADDRESSES, leaves_and_deletes, whole_course

SECRET = "xapi-test-secret-key-0123456789"


@pytest.fixture(scope="module")
def lrs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RalphLrs]:
    """One Ralph for the module; each test is an installation of its own (its public URL)."""
    with RalphLrs(tmp_path_factory.mktemp("ralph")) as server:
        yield server


@pytest.fixture
def public_url() -> str:
    return f"http://learnbot-{uuid.uuid4().hex[:8]}.test"


def forwarder_for(
    engine: AsyncEngine, lrs: RalphLrs, public_url: str, dialogue: Dialogue, **options: Any
) -> XapiForwarder:
    client = LrsClient(lrs.endpoint, lrs.username, lrs.password)
    mapper = StatementMapper(public_url, SECRET, dialogue.courses)
    return XapiForwarder(engine, client, mapper, **options)


async def forward_all(forwarder: XapiForwarder) -> None:
    while await forwarder.forward_once():
        pass


async def all_events(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return await events_after(conn, 0, 1_000_000)


async def test_a_journey_on_each_channel_ends_with_one_statement_per_event(
    engine: AsyncEngine, shipped: Dialogue, lrs: RalphLrs, public_url: str
) -> None:
    for channel, address in ADDRESSES.items():
        await whole_course(shipped, channel, address)
    await leaves_and_deletes(shipped, ChannelName.SMS, "+15550100009")
    forwarder = forwarder_for(engine, lrs, public_url, shipped, batch=50)

    await forward_all(forwarder)
    await forwarder.client.aclose()

    logged = await all_events(engine)
    expected = {forwarder.mapper.statement_id(e.id): e for e in logged}
    stored = lrs.statements(public_url)
    assert Counter(s["id"] for s in stored) == Counter(list(expected))  # none missing, none twice
    types = {e.type for e in logged}
    assert {"enrolled", "lesson_delivered", "answered", "lesson_completed"} <= types
    assert {"course_completed", "stopped", "restarted", "data_deleted"} <= types
    assert {"language_changed"} <= types
    channels = {
        s["context"]["extensions"]["https://w3id.org/learnbot/xapi/extensions/channel"]
        for s in stored
        if "extensions" in s.get("context", {})
    }
    assert {"sms", "whatsapp", "telegram"} <= channels
    # Never an address: actors are pseudonyms under our public URL.
    text = repr(stored)
    for address in [*ADDRESSES.values(), "+15550100009"]:
        assert address not in text
    assert forwarder.stats.parked == 0


async def test_every_statement_we_send_passes_ralphs_own_xapi_models(
    engine: AsyncEngine, shipped: Dialogue, public_url: str
) -> None:
    await whole_course(shipped, ChannelName.TELEGRAM, "700000002")
    await leaves_and_deletes(shipped, ChannelName.WHATSAPP, "+15550100010")
    mapper = StatementMapper(public_url, SECRET, shipped.courses)

    statements = [mapper.statement(e) for e in await all_events(engine)]

    assert validate_with_ralph(statements) == []
    assert len(statements) > 50


async def test_sending_again_after_a_backfill_stores_nothing_twice(
    engine: AsyncEngine, shipped: Dialogue, lrs: RalphLrs, public_url: str
) -> None:
    await whole_course(shipped, ChannelName.SMS, "+15550100011")
    forwarder = forwarder_for(engine, lrs, public_url, shipped, batch=40)
    await forward_all(forwarder)
    first = lrs.statements(public_url)

    async with engine.begin() as conn:
        await xapi_state.rewind(conn, CURSOR, 0)
    await forward_all(forwarder)
    await forwarder.client.aclose()

    again = lrs.statements(public_url)
    assert sorted(s["id"] for s in again) == sorted(s["id"] for s in first)
    async with engine.connect() as conn:
        status = await forwarding_status(conn)
        newest = await conn.scalar(select(func.max(events.c.id)))
    assert status.last_event_id == newest
    assert status.lag_events == 0


async def test_a_statement_the_lrs_refuses_is_parked_and_the_rest_goes_on(
    engine: AsyncEngine, shipped: Dialogue, lrs: RalphLrs, public_url: str
) -> None:
    await whole_course(shipped, ChannelName.SMS, "+15550100012")
    forwarder = forwarder_for(engine, lrs, public_url, shipped, batch=100)
    logged = await all_events(engine)
    bad = logged[7].id
    real = forwarder.mapper.statement

    def statement(event: Any, score: Any = None) -> dict[str, Any]:
        made = real(event, score)
        if event.id == bad:
            # What a bug in a mapping would send: an account with no homePage.
            made["actor"] = {"objectType": "Agent", "account": {"name": "x"}}
        return made

    forwarder.mapper.statement = statement  # type: ignore[method-assign]
    await forward_all(forwarder)
    await forwarder.client.aclose()

    stored = {s["id"] for s in lrs.statements(public_url)}
    assert len(stored) == len(logged) - 1
    assert forwarder.mapper.statement_id(bad) not in stored
    async with engine.connect() as conn:
        parked = (await conn.execute(select(xapi_parked))).all()
        status = await forwarding_status(conn)
    assert [(p.event_id, p.status_code in (400, 422)) for p in parked] == [(bad, True)]
    assert parked[0].reason  # what the LRS said, for `learnbot xapi status`
    assert status.lag_events == 0 and status.parked[0].event_id == bad


async def test_a_statement_stored_before_with_other_content_counts_as_done(
    engine: AsyncEngine, shipped: Dialogue, lrs: RalphLrs, public_url: str
) -> None:
    await whole_course(shipped, ChannelName.SMS, "+15550100013")
    forwarder = forwarder_for(engine, lrs, public_url, shipped, batch=100)
    logged = await all_events(engine)
    first = forwarder.mapper.statement(logged[0])
    first["context"]["platform"] = "an older learnbot"  # as an earlier version mapped it
    assert (await forwarder.client.post([first])).outcome == "stored"

    await forward_all(forwarder)
    await forwarder.client.aclose()

    assert forwarder.stats.conflicts == 1
    assert len(lrs.statements(public_url)) == len(logged)
    async with engine.connect() as conn:
        assert (await forwarding_status(conn)).lag_events == 0


async def test_one_process_forwards_at_a_time_and_another_takes_over(
    engine: AsyncEngine, shipped: Dialogue, lrs: RalphLrs, public_url: str
) -> None:
    await whole_course(shipped, ChannelName.SMS, "+15550100014")
    first = forwarder_for(engine, lrs, public_url, shipped, batch=30, holder="elsewhere:1:a")
    second = forwarder_for(engine, lrs, public_url, shipped, batch=30, holder="elsewhere:2:b")

    assert await first.forward_once() == 30
    assert await second.forward_once() is None  # the first one holds the lease
    async with engine.begin() as conn:  # the first one dies: its lease runs out
        await conn.execute(update(xapi_cursor).values(lease_until=datetime(2000, 1, 1, tzinfo=UTC)))
    await forward_all(second)
    for forwarder in (first, second):
        await forwarder.client.aclose()

    logged = await all_events(engine)
    assert len(lrs.statements(public_url)) == len(logged)
    assert second.stats.stored == len(logged) - 30


async def test_a_backfill_while_it_forwards_is_not_overtaken_by_the_batch_read_ahead(
    engine: AsyncEngine, shipped: Dialogue, lrs: RalphLrs, public_url: str
) -> None:
    await whole_course(shipped, ChannelName.SMS, "+15550100015")
    forwarder = forwarder_for(engine, lrs, public_url, shipped, batch=20)
    assert await forwarder.forward_once() == 20  # the next 20 are read ahead meanwhile

    async with engine.begin() as conn:
        await xapi_state.rewind(conn, CURSOR, 0)
    await forward_all(forwarder)
    await forwarder.client.aclose()

    logged = await all_events(engine)
    # Everything was sent again from the start, once the backfill was seen.
    assert forwarder.stats.stored >= len(logged) + 20
    assert len(lrs.statements(public_url)) == len(logged)
