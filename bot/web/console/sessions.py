"""The console session: a signed, expiring cookie naming the user, with its CSRF token.

Nothing is kept on the server: the cookie holds the user id, a fingerprint of their
password hash (setting a new password signs every other session out) and the CSRF token,
signed with `Settings.secret_key` (itsdangerous, HMAC-SHA1 over a salted key). SameSite=Lax,
not Strict: with Strict a trainer following a console link from an e-mail or a chat would
arrive signed out; Lax still keeps the cookie off cross-site POSTs, and every form checks its
CSRF token besides.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "learnbot_console"
LIFETIME = timedelta(hours=12)
_SALT = "learnbot.console.session"


@dataclass(frozen=True, slots=True)
class Session:
    """Who is signed in (None: nobody yet) and the token every form of theirs carries."""

    csrf: str
    user_id: int | None = None
    password: str = ""  # fingerprint of the password hash the user signed in with

    def signed_in(self, user_id: int, password_hash: str) -> Session:
        """A new session for this user, with a new CSRF token (no fixation of the old one)."""
        return Session(secrets.token_urlsafe(32), user_id, fingerprint(password_hash))

    def signed_out(self) -> Session:
        """An anonymous session with a fresh CSRF token."""
        return replace(self, user_id=None, password="", csrf=secrets.token_urlsafe(32))


def fingerprint(password_hash: str) -> str:
    """A short digest of a password hash: changes whenever the password does."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


class SessionCookies:
    """Reads and writes the session cookie of one app."""

    def __init__(self, secret_key: str, *, secure: bool, lifetime: timedelta = LIFETIME) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=_SALT)
        self.secure = secure
        self.lifetime = lifetime

    def read(self, request: Request) -> Session | None:
        """The request's valid session; None when absent, tampered with or expired."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=int(self.lifetime.total_seconds()))
        except BadSignature:  # SignatureExpired is one too
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user_id = data.get("u")
        return Session(
            csrf=data["c"],
            user_id=user_id if isinstance(user_id, int) else None,
            password=str(data.get("p", "")),
        )

    def new(self) -> Session:
        """An anonymous session: what a sign-in form needs for its CSRF token."""
        return Session(secrets.token_urlsafe(32))

    def write(self, response: Response, session: Session) -> None:
        """Set the cookie: HttpOnly, SameSite=Lax, Secure on https, expiring with the session."""
        value = self._serializer.dumps(
            {"u": session.user_id, "c": session.csrf, "p": session.password}
        )
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(self.lifetime.total_seconds()),
            path="/console",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )
