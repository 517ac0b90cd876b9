"""Signing in and out of the console, and accepting an invitation."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.trainers.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PasswordError,
    accept_invitation,
    authenticate,
    current_hash,
    invited_user,
)
from bot.web.console.app import LANGUAGE_COOKIE, Console, Reader, safe_next


def client_address(request: Request) -> str:
    """The client's address as the server sees it (uvicorn's proxy headers decide behind one)."""
    return request.client.host if request.client is not None else "unknown"


def _redirect(reader: Reader, console: Console, to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    console.cookies.write(response, reader.session)
    return response


def _signed_in_as(reader: Reader, user_id: int, password_hash: str) -> Reader:
    # The next request reads the user and scope from the new cookie; only the cookie matters.
    return replace(
        reader, session=reader.session.signed_in(user_id, password_hash), fresh_session=True
    )


async def sign_in_page(console: Console, request: Request) -> Response:
    """GET /console/sign-in: the form (or straight in, when already signed in)."""
    reader = await console.reader(request)
    next_path = safe_next(request.query_params.get("next"))
    if reader.user is not None:
        return RedirectResponse(next_path, status_code=303)
    # The anonymous session (made now if the browser has none) holds the token the POST checks.
    return console.render(
        reader,
        "sign_in.html",
        request=request,
        next=next_path,
        email="",
        signed_out=request.query_params.get("signed_out") == "1",
    )


async def sign_in(console: Console, request: Request) -> Response:
    """POST /console/sign-in: check the token, the throttle, then the e-mail and password."""
    reader = await console.reader(request)
    form = await console.checked_form(request, reader)
    if isinstance(form, Response):
        return form
    email = str(form.get("email", "")).strip().lower()[:200]
    password = str(form.get("password", ""))[: MAX_PASSWORD_LENGTH + 1]
    next_path = safe_next(str(form.get("next", "")))
    account, address = f"account:{email}", f"address:{client_address(request)}"
    if console.throttle.blocked(account, address):
        message = reader.ui.gettext(
            "Too many failed sign-ins. Please wait %(minutes)s minutes and try again.",
            minutes=int(console.throttle.window // 60),
        )
        return console.render(
            reader,
            "sign_in.html",
            status=429,
            request=request,
            next=next_path,
            email=email,
            error=message,
            headers={"Retry-After": str(int(console.throttle.window))},
        )
    # Counted before the check, so parallel guesses cannot all slip past `blocked` above.
    console.throttle.failed(account, address)
    async with console.config.engine.begin() as conn:
        user = await authenticate(conn, email, password)
    if user is None:
        # One message for an unknown e-mail and a wrong password: nobody learns who has access.
        return console.render(
            reader,
            "sign_in.html",
            status=400,
            request=request,
            next=next_path,
            email=email,
            error=reader.ui.gettext("The e-mail address or the password is wrong."),
        )
    console.throttle.succeeded(account, address)
    async with console.config.engine.connect() as conn:
        stored = await current_hash(conn, user.id)
    assert stored is not None
    return _redirect(_signed_in_as(reader, user.id, stored), console, next_path)


async def sign_out(console: Console, request: Request) -> Response:
    """POST /console/sign-out: forget the user; the cookie keeps only a new CSRF token."""
    reader = await console.reader(request)
    form = await console.checked_form(request, reader)
    if isinstance(form, Response):
        return form
    signed_out = replace(reader, session=reader.session.signed_out(), user=None, fresh_session=True)
    return _redirect(signed_out, console, "/console/sign-in?signed_out=1")


async def invitation_page(console: Console, request: Request) -> Response:
    """GET /console/invite/<token>: choose a password, if the invitation is still open."""
    reader = await console.reader(request)
    token = request.path_params["token"]
    async with console.config.engine.connect() as conn:
        invited = await invited_user(conn, token)
    if invited is None:
        return console.error(
            reader,
            410,
            reader.ui.gettext(
                "This invitation link has expired or was already used. Ask an admin for a new one."
            ),
            request=request,
        )
    return console.render(
        reader, "invite.html", request=request, invited=invited, min_length=MIN_PASSWORD_LENGTH
    )


async def accept(console: Console, request: Request) -> Response:
    """POST /console/invite/<token>: set the password (twice the same), then sign in."""
    reader = await console.reader(request)
    token = request.path_params["token"]
    form = await console.checked_form(request, reader)
    if isinstance(form, Response):
        return form
    password = str(form.get("password", ""))[: MAX_PASSWORD_LENGTH + 1]
    again = str(form.get("password_again", ""))[: MAX_PASSWORD_LENGTH + 1]
    async with console.config.engine.connect() as conn:
        invited = await invited_user(conn, token)
    if invited is None:
        return await invitation_page(console, request)
    if password != again:
        return console.render(
            reader,
            "invite.html",
            status=400,
            request=request,
            invited=invited,
            min_length=MIN_PASSWORD_LENGTH,
            error=reader.ui.gettext("The two passwords differ."),
        )
    try:
        async with console.config.engine.begin() as conn:
            user = await accept_invitation(conn, token, password)
            stored = await current_hash(conn, user.id)
    except PasswordError as exc:
        return console.render(
            reader,
            "invite.html",
            status=400,
            request=request,
            invited=invited,
            min_length=MIN_PASSWORD_LENGTH,
            error=reader.ui.render(exc),
        )
    assert stored is not None
    signed_in = _signed_in_as(reader, user.id, stored)
    return _redirect(signed_in, console, "/console")


async def choose_language(console: Console, request: Request) -> Response:
    """GET /console/language?lang=xx&next=...: remember the reader's language in a cookie."""
    lang = request.query_params.get("lang", "")
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    if lang in console.locales:
        response.set_cookie(
            LANGUAGE_COOKIE,
            lang,
            max_age=365 * 24 * 3600,
            path="/console",
            httponly=True,
            samesite="lax",
            secure=console.cookies.secure,
        )
    return response
