"""Signing in and out: the one message for any wrong credential, CSRF, the throttle, cookies."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.lessons.loader import LoadedCourse
from bot.trainers.passwords import set_password
from bot.web.console.sessions import COOKIE, SessionCookies
from bot.web.console.throttle import SignInThrottle
from tests.web.console.conftest import PASSWORD, ConsoleClient, console_app

WRONG = "The e-mail address or the password is wrong."


async def test_signed_out_the_console_sends_you_to_sign_in_and_back(console: ConsoleClient) -> None:
    response = await console.http.get("/console/cohorts/1?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fcohorts%2F1%3Fx%3D1"


async def test_sign_in_sets_a_signed_httponly_lax_cookie_and_shows_the_users_cohorts(
    console: ConsoleClient,
) -> None:
    response = await console.sign_in("Tom@Example.org")
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # the public URL is http here
    home = await console.http.get("/console")
    assert home.status_code == 200
    assert "Tom&#39;s group" in home.text and "Una&#39;s group" not in home.text


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    console: ConsoleClient,
) -> None:
    wrong = await console.sign_in("tom@example.org", "not the password")
    unknown = await console.sign_in("nobody@example.org", PASSWORD)
    assert wrong.status_code == unknown.status_code == 400
    assert WRONG in wrong.text and WRONG in unknown.text
    assert (await console.http.get("/console")).status_code == 303  # still signed out


async def test_a_sign_in_without_its_form_token_is_refused_with_a_403_page(
    console: ConsoleClient,
) -> None:
    await console.csrf()  # the browser has a session cookie, but the form lacks the token
    data = {"email": "tom@example.org", "password": PASSWORD}
    missing = await console.http.post("/console/sign-in", data=data)
    forged = await console.http.post("/console/sign-in", data={**data, "csrf_token": "forged"})
    for response in (missing, forged):
        assert response.status_code == 403
        assert "<html" in response.text and "did not come from the console" in response.text
    assert (await console.http.get("/console")).status_code == 303


async def test_five_failures_lock_the_account_for_a_while_even_with_the_right_password(
    console: ConsoleClient,
) -> None:
    for _ in range(5):
        assert (await console.sign_in("una@example.org", "guess guess guess")).status_code == 400
    locked = await console.sign_in("una@example.org", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert locked.headers["retry-after"] == str(15 * 60)


async def test_parallel_guesses_cannot_slip_past_the_limit(console: ConsoleClient) -> None:
    token = await console.csrf()
    data = {"csrf_token": token, "email": "una@example.org", "password": "guess guess guess"}
    answers = await asyncio.gather(
        *(console.http.post("/console/sign-in", data=data) for _ in range(8))
    )
    assert sorted(answer.status_code for answer in answers) == [400] * 5 + [429] * 3


async def test_successful_sign_ins_do_not_lock_a_shared_address(console: ConsoleClient) -> None:
    for _ in range(6):  # an office behind one address, signing in all morning
        assert (await console.sign_in("tom@example.org")).status_code == 303
        await console.post("/console/sign-out", {})


async def test_failures_count_per_address_across_accounts(console: ConsoleClient) -> None:
    for email in ("a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@x.org"):
        await console.sign_in(email, "guess guess guess")
    assert (await console.sign_in("tom@example.org", PASSWORD)).status_code == 429


async def test_the_sign_in_page_speaks_the_readers_language(console: ConsoleClient) -> None:
    page = await console.http.get("/console/sign-in", headers={"Accept-Language": "ar,en;q=0.5"})
    assert 'lang="ar" dir="rtl"' in page.text
    chosen = await console.http.get("/console/language?lang=fr&next=/console/sign-in")
    assert chosen.status_code == 303 and chosen.headers["location"] == "/console/sign-in"
    page = await console.http.get("/console/sign-in", headers={"Accept-Language": "ar"})
    assert 'lang="fr" dir="ltr"' in page.text  # the reader's choice beats the browser's


async def test_sign_out_ends_the_session(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    response = await console.post("/console/sign-out", {})
    assert response.status_code == 303
    assert (await console.http.get("/console")).status_code == 303
    assert "You are signed out." in (await console.http.get(response.headers["location"])).text


async def test_sign_out_needs_its_token_too(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    assert (await console.http.post("/console/sign-out", data={})).status_code == 403
    assert (await console.http.get("/console")).status_code == 200


async def test_a_new_password_signs_the_old_sessions_out(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    async with console.engine.begin() as conn:
        await set_password(conn, "tom@example.org", "a brand new password")
    assert (await console.http.get("/console")).status_code == 303


async def test_a_tampered_cookie_is_no_session(console: ConsoleClient) -> None:
    await console.sign_in("tom@example.org")
    value = console.http.cookies[COOKIE]
    console.http.cookies.set(COOKIE, value[:-2] + "xx", path="/console")
    assert (await console.http.get("/console")).status_code == 303


async def test_a_session_expires() -> None:
    from starlette.requests import Request
    from starlette.responses import Response

    cookies = SessionCookies("key", secure=True, lifetime=timedelta(seconds=1))
    response = Response()
    session = cookies.new().signed_in(7, "hash")
    cookies.write(response, session)
    header = response.headers["set-cookie"]
    assert "Secure" in header
    value = header.split(";")[0].split("=", 1)[1]
    scope = {"type": "http", "headers": [(b"cookie", f"{COOKIE}={value}".encode())]}
    assert cookies.read(Request(scope)) == session
    await asyncio.sleep(2.1)
    assert cookies.read(Request(scope)) is None


async def test_an_invitation_link_sets_the_password_once_and_signs_in(
    console: ConsoleClient,
) -> None:
    from bot.trainers.passwords import invite

    async with console.engine.begin() as conn:
        made = await invite(conn, "una@example.org", "http://testserver")
    path = made.link.removeprefix("http://testserver")
    page = await console.http.get(path)
    assert page.status_code == 200 and "Welcome, Una." in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    token = await console.csrf(path)
    differ = await console.http.post(
        path, data={"csrf_token": token, "password": "a new password!", "password_again": "no"}
    )
    assert differ.status_code == 400 and "The two passwords differ." in differ.text
    short = await console.http.post(
        path, data={"csrf_token": token, "password": "short", "password_again": "short"}
    )
    assert short.status_code == 400 and "too short" in short.text
    done = await console.http.post(
        path,
        data={
            "csrf_token": token,
            "password": "a new password!",
            "password_again": "a new password!",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/console"
    assert (await console.http.get("/console")).status_code == 200
    used = await console.http.get(path)
    assert used.status_code == 410 and "expired or was already used" in used.text


async def test_an_expired_invitation_link_is_refused(console: ConsoleClient) -> None:
    from bot.store.db import utcnow
    from bot.trainers.passwords import invite

    async with console.engine.begin() as conn:
        made = await invite(
            conn, "una@example.org", "http://testserver", now=utcnow() - timedelta(hours=73)
        )
    response = await console.http.get(made.link.removeprefix("http://testserver"))
    assert response.status_code == 410


async def test_a_form_too_large_is_refused_before_it_is_read(console: ConsoleClient) -> None:
    token = await console.csrf()
    response = await console.http.post(
        "/console/sign-in",
        data={"csrf_token": token, "email": "tom@example.org", "password": "x" * 70_000},
    )
    assert response.status_code == 413
    assert "The form is too large to send." in response.text


async def test_behind_an_https_public_url_the_cookies_are_secure(
    console_engine: AsyncEngine, courses: dict[str, LoadedCourse]
) -> None:
    app = console_app(
        console_engine, courses, [], SignInThrottle(), public_url="https://learn.example.org"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        page = await http.get("/console/sign-in")
        assert "Secure" in page.headers["set-cookie"]
        chosen = await http.get("/console/language?lang=sw")
        assert "Secure" in chosen.headers["set-cookie"]
