"""Trainer actions in the console: push and cancel, pause, CSV import, requeue; roles = 404."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import utcnow
from bot.store.tables import cohorts, deliveries, enrollments, learners, pushes
from tests.store.rows import insert_enrollment, insert_learner
from tests.trainers.conftest import LESSON, count
from tests.web.console.conftest import TOMS_COHORT, UNAS_COHORT, ConsoleClient

GOOD_ROW = "Amina,+254712345678,sms,sw\n"
BAD_ROW = "Baraka,not a number,sms,sw\n"


async def enrol(engine: AsyncEngine, cohort_id: int, n: int, status: str = "active") -> list[int]:
    """`n` SMS learners enrolled in the cohort; their learner ids."""
    ids = []
    async with engine.begin() as conn:
        for _ in range(n):
            learner = await insert_learner(conn, status=status)
            await insert_enrollment(conn, learner["id"], cohort_id)
            ids.append(int(learner["id"]))
    return ids


async def test_a_push_now_shows_its_progress_refreshing_and_can_be_cancelled(
    console: ConsoleClient,
) -> None:
    await enrol(console.engine, TOMS_COHORT, 3)
    await console.sign_in("tom@example.org")
    page = f"/console/cohorts/{TOMS_COHORT}"
    response = await console.post(
        f"{page}/push", {"lesson": LESSON, "when": "now", "at": ""}, form=page
    )
    assert response.status_code == 303
    progress_url = response.headers["location"]
    assert progress_url.startswith("/console/pushes/")
    progress = await console.http.get(progress_url)
    assert progress.status_code == 200
    assert progress.headers["refresh"] == "3"  # reloads without JavaScript
    assert "This page refreshes every 3 seconds." in progress.text
    still = await console.http.get(f"{progress_url}?refresh=off")
    assert "refresh" not in still.headers  # the reader may stop it
    assert "Estimated time to send:" in progress.text
    assert "<dd>0 / 3</dd>" in progress.text
    cancelled = await console.post(f"{progress_url}/cancel", {}, form=progress_url)
    assert cancelled.status_code == 303
    after = await console.http.get(progress_url)
    assert "Status: cancelled" in after.text and "refresh" not in after.headers
    assert await count(console.engine, deliveries, deliveries.c.status == "cancelled") == 3
    listed = (await console.http.get(page)).text  # the cohort page links to it again
    assert f'<a href="{progress_url}">Push ' in listed and "cancelled" in listed


async def test_a_push_at_a_time_is_scheduled_in_the_cohorts_zone(console: ConsoleClient) -> None:
    await enrol(console.engine, TOMS_COHORT, 1)
    await console.sign_in("tom@example.org")
    page = f"/console/cohorts/{TOMS_COHORT}"
    response = await console.post(
        f"{page}/push", {"lesson": LESSON, "when": "at", "at": "2099-01-05T09:00"}, form=page
    )
    assert response.status_code == 303
    async with console.engine.connect() as conn:
        push = (await conn.execute(select(pushes))).one()
    assert push.status == "scheduled" and push.send_at.isoformat() == "2099-01-05T06:00:00+00:00"


async def test_a_bad_push_time_is_shown_on_the_form(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    page = f"/console/cohorts/{TOMS_COHORT}"
    response = await console.post(
        f"{page}/push", {"lesson": LESSON, "when": "at", "at": "soon"}, form=page
    )
    assert response.status_code == 400
    assert "--at: expected" in response.text  # the CLI's own check, in the reader's language


async def test_a_push_without_its_token_is_refused(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    response = await console.http.post(
        f"/console/cohorts/{TOMS_COHORT}/push", data={"lesson": LESSON, "when": "now"}
    )
    assert response.status_code == 403
    assert await count(console.engine, pushes) == 0


async def test_pause_and_resume(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    page = f"/console/cohorts/{TOMS_COHORT}"
    assert (
        await console.post(f"{page}/status", {"status": "paused"}, form=page)
    ).status_code == 303
    assert "Resume the cohort" in (await console.http.get(page)).text
    assert await count(console.engine, cohorts, cohorts.c.status == "paused") == 1
    await console.post(f"{page}/status", {"status": "active"}, form=page)
    assert await count(console.engine, cohorts, cohorts.c.status == "paused") == 0


async def import_file(console: ConsoleClient, text: str | bytes, **fields: str) -> str:
    page = f"/console/cohorts/{TOMS_COHORT}"
    token = await console.csrf(page)
    data = text.encode() if isinstance(text, str) else text
    response = await console.http.post(
        f"{page}/import",
        data={"csrf_token": token, **fields},
        files={"file": ("learners.csv", data, "text/csv")},
    )
    return f"{response.status_code} {response.text}"


async def test_an_import_with_a_bad_row_lists_it_and_imports_nothing(
    console: ConsoleClient,
) -> None:
    await console.sign_in("tom@example.org")
    answer = await import_file(console, "name,phone,channel,locale\n" + GOOD_ROW + BAD_ROW)
    assert answer.startswith("400 ")
    assert "1 bad row: nothing imported" in answer
    assert "Line 3, phone:" in answer
    assert await count(console.engine, learners) == 0


async def test_an_import_of_a_file_that_is_not_utf8_says_so_as_the_cli_does(
    console: ConsoleClient,
) -> None:
    await console.sign_in("tom@example.org")
    answer = await import_file(
        console, "name,phone,channel,locale\nJosé,+1,sms,es\n".encode("latin-1")
    )
    assert answer.startswith("400 ")
    assert "Line 1, file: not UTF-8 text: invalid continuation byte" in answer


async def test_an_import_skipping_bad_rows_imports_the_others(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    answer = await import_file(
        console, "name,phone,channel,locale\n" + GOOD_ROW + BAD_ROW, skip_invalid="1"
    )
    assert answer.startswith("200 ")
    assert "1 learner created" in answer and "1 bad row skipped" in answer
    assert await count(console.engine, enrollments, enrollments.c.cohort_id == TOMS_COHORT) == 1


async def test_failed_deliveries_show_their_reason_and_can_be_requeued(
    console: ConsoleClient,
) -> None:
    active, stopped = await enrol(console.engine, TOMS_COHORT, 1) + await enrol(
        console.engine, TOMS_COHORT, 1, status="stopped"
    )
    async with console.engine.begin() as conn:
        enrolled = {row.learner_id: row.id for row in await conn.execute(select(enrollments))}
        for learner_id in (active, stopped):
            await conn.execute(
                deliveries.insert(),
                {
                    "learner_id": learner_id,
                    "enrollment_id": enrolled[learner_id],
                    "lesson_id": LESSON,
                    "kind": "lesson",
                    "channel": "sms",
                    "status": "dead",
                    "due_at": utcnow(),
                    "attempts": 5,
                    "error_code": "30003",
                    "error_detail": "Unreachable destination handset",
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                },
            )
    await console.sign_in("tom@example.org")
    page = f"/console/cohorts/{TOMS_COHORT}"
    html = (await console.http.get(page)).text
    assert "30003 Unreachable destination handset" in html
    assert "Learner is stopped" in html  # no requeue button for someone who said STOP
    answer = await console.post(f"{page}/requeue", {"delivery": "all"}, form=page)
    assert "1 delivery queued again" in answer.text
    assert await count(console.engine, deliveries, deliveries.c.status == "pending") == 1


async def test_another_trainers_cohort_and_push_are_404_for_every_action(
    console: ConsoleClient,
) -> None:
    await enrol(console.engine, UNAS_COHORT, 1)
    await console.sign_in("una@example.org")
    page = f"/console/cohorts/{UNAS_COHORT}"
    response = await console.post(f"{page}/push", {"lesson": LESSON, "when": "now"}, form=page)
    push_url = response.headers["location"]
    await console.post("/console/sign-out", {})
    await console.sign_in("tom@example.org")
    token = await console.csrf("/console")
    for method, path in (
        ("GET", page),
        ("POST", f"{page}/status"),
        ("POST", f"{page}/push"),
        ("POST", f"{page}/import"),
        ("POST", f"{page}/requeue"),
        ("GET", push_url),
        ("POST", f"{push_url}/cancel"),
        ("GET", "/console/cohorts/999"),
    ):
        data = {"csrf_token": token, "status": "paused", "lesson": LESSON, "when": "now"}
        answer = await console.http.request(method, path, data=data if method == "POST" else None)
        assert answer.status_code == 404, (method, path)
        assert "There is no such page in the console." in answer.text
    assert await count(console.engine, pushes, pushes.c.status == "cancelled") == 0
    assert await count(console.engine, cohorts, cohorts.c.status == "paused") == 0


async def test_the_cohort_page_in_every_language(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    for locale in ("fr", "es", "ar", "pt", "sw"):
        response = await console.http.get(
            f"/console/cohorts/{TOMS_COHORT}", headers={"Accept-Language": locale}
        )
        assert response.status_code == 200, response.text
