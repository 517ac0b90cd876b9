"""Console passwords and one-time invitations: set, check, invite, accept.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
set). Hashing takes tens of milliseconds on purpose, so it runs in a worker thread: the
event loop keeps serving webhooks meanwhile. An invitation is a random token shown once; the
store keeps only its SHA-256, which is enough for a 256-bit random secret (no salt needed:
nobody can guess the token from its hash).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.db import utcnow
from bot.store.sign_in import (
    add_invitation,
    open_invitation,
    password_hash_of,
    set_password_hash,
    use_invitation,
)
from bot.trainers.roles import UserRecord, user_by_email, user_by_id
from bot.trainers.text import N_, TrainerError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; a cap keeps a huge POST from costing more
INVITATION_LIFETIME = timedelta(hours=72)
INVITE_PATH = "/console/invite/"

_hasher = PasswordHasher()
# Each argon2 call takes 64 MiB for its ~0.2 s: a burst of sign-ins (an attack from many
# addresses) waits its turn here rather than taking the memory of a small server.
_ARGON2_SLOTS = threading.BoundedSemaphore(2)
# Checked when the e-mail is unknown, so that answering takes as long as for a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class PasswordError(TrainerError, ValueError):
    """A password or invitation is refused; the message names what is wrong."""


@dataclass(frozen=True, slots=True)
class Invitation:
    """A one-time sign-in link, shown once."""

    user: UserRecord
    link: str
    expires_at: datetime


def check_password(password: str) -> str:
    """The password as given; PasswordError when it is too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordError(
            N_("PASSWORD: too short: at least %(count)s characters"), count=MIN_PASSWORD_LENGTH
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordError(
            N_("PASSWORD: too long: at most %(count)s characters"), count=MAX_PASSWORD_LENGTH
        )
    return password


async def hash_password(password: str) -> str:
    """The argon2id hash of a password (computed off the event loop)."""

    def compute() -> str:
        with _ARGON2_SLOTS:
            return _hasher.hash(password)

    return await asyncio.to_thread(compute)


async def _matches(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        with _ARGON2_SLOTS:
            try:
                return _hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

    return await asyncio.to_thread(verify)


async def _known_user(conn: AsyncConnection, email: str) -> UserRecord:
    user = await user_by_email(conn, email)
    if user is None:
        raise PasswordError(
            N_("EMAIL: no user has the e-mail %(email)s (see %(command)s)"),
            email=repr(email.strip()),
            command="`learnbot user list`",
        )
    return user


async def set_password(conn: AsyncConnection, email: str, password: str) -> UserRecord:
    """Give the user with this e-mail a new console password; PasswordError otherwise."""
    user = await _known_user(conn, email)
    check_password(password)
    await set_password_hash(conn, user.id, await hash_password(password))
    return user


async def authenticate(conn: AsyncConnection, email: str, password: str) -> UserRecord | None:
    """The user whose e-mail and password these are; None otherwise (whatever was wrong)."""
    user = await user_by_email(conn, email) if email.strip() else None
    stored = None if user is None else await password_hash_of(conn, user.id)
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    # The dummy check keeps an unknown e-mail as slow as a wrong password: no user probing.
    matched = await _matches(stored or _DUMMY_HASH, password)
    if user is None or stored is None or not matched:
        return None
    if _hasher.check_needs_rehash(stored):  # parameters raised since: upgrade on the way in
        await set_password_hash(conn, user.id, await hash_password(password))
    return user


async def current_hash(conn: AsyncConnection, user_id: int) -> str | None:
    """The user's password hash now (a console session is bound to it); None: no password."""
    return await password_hash_of(conn, user_id)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def invite(
    conn: AsyncConnection, email: str, public_url: str, *, now: datetime | None = None
) -> Invitation:
    """A new one-time link `<public URL>/console/invite/<token>`, valid 72 h."""
    user = await _known_user(conn, email)
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    expires_at = now + INVITATION_LIFETIME
    await add_invitation(conn, user.id, _token_hash(token), now=now, expires_at=expires_at)
    return Invitation(user, public_url.rstrip("/") + INVITE_PATH + token, expires_at)


async def invited_user(conn: AsyncConnection, token: str) -> UserRecord | None:
    """The user an unused, unexpired invitation is for; None for any other token."""
    user_id = await open_invitation(conn, _token_hash(token), utcnow())
    return None if user_id is None else await user_by_id(conn, user_id)


async def accept_invitation(conn: AsyncConnection, token: str, password: str) -> UserRecord:
    """Use the invitation once to set the user's password; PasswordError if it cannot be."""
    check_password(password)
    user_id = await use_invitation(conn, _token_hash(token), utcnow())
    user = None if user_id is None else await user_by_id(conn, user_id)
    if user is None:
        raise PasswordError(N_("this invitation link has expired or was already used"))
    await set_password_hash(conn, user.id, await hash_password(password))
    return user
