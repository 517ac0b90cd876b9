"""Staff users with a role, and who may act on which cohort.

An admin acts on every cohort; a trainer only on the cohorts they own. The acting user of a
command is named by e-mail (`--as EMAIL` or `LEARNBOT_USER`) or, from Telegram, by chat id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import Role
from bot.store.db import utcnow
from bot.store.tables import users
from bot.trainers.text import N_, Text, TrainerError

ACTING_USER_ENV = "LEARNBOT_USER"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CHAT_ID = re.compile(r"^-?\d{1,20}$")


class RoleError(TrainerError):
    """The acting user is unknown, or may not do this; the message says which and why."""


class UserInputError(TrainerError, ValueError):
    """A value given for a new user is not valid; the message names the field."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A trainer or an admin."""

    id: int
    name: str
    role: Role
    email: str | None
    telegram_chat_id: str | None
    phone: str | None

    @property
    def is_admin(self) -> bool:
        """Whether this user acts on every cohort."""
        return self.role is Role.ADMIN

    def label(self) -> str:
        """How messages name this user."""
        return f"{self.name} <{self.email}>" if self.email else self.name


def _user(row: Any) -> UserRecord:
    return UserRecord(
        id=int(row.id),
        name=row.name,
        role=Role(row.role),
        email=row.email,
        telegram_chat_id=row.telegram_chat_id,
        phone=row.phone,
    )


def normalise_email(email: str) -> str:
    """Lower-cased e-mail address; UserInputError naming `--email` when it is not one."""
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise UserInputError(N_("--email: not an e-mail address: %(email)s"), email=repr(email))
    return cleaned


def normalise_phone(phone: str) -> str:
    """An international number as E.164; UserInputError naming `--phone` otherwise."""
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException as exc:
        raise UserInputError(
            N_("--phone: %(phone)s is not a +<country code> number"), phone=repr(phone)
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise UserInputError(
            N_("--phone: %(phone)s is not a valid phone number"), phone=repr(phone)
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


async def add_user(
    conn: AsyncConnection,
    *,
    name: str,
    email: str,
    role: Role,
    telegram_chat_id: str | None = None,
    phone: str | None = None,
) -> UserRecord:
    """Create a user; UserInputError when a value is invalid or already taken by another user."""
    if not name.strip():
        raise UserInputError(N_("NAME: must not be empty"))
    email = normalise_email(email)
    if telegram_chat_id is not None and not _CHAT_ID.match(telegram_chat_id.strip()):
        raise UserInputError(
            N_("--telegram-chat-id: expected a number, got %(value)s"), value=repr(telegram_chat_id)
        )
    chat_id = telegram_chat_id.strip() if telegram_chat_id is not None else None
    e164 = normalise_phone(phone) if phone is not None else None
    for column, value, option in (
        (users.c.email, email, "--email"),
        (users.c.telegram_chat_id, chat_id, "--telegram-chat-id"),
        (users.c.phone, e164, "--phone"),
    ):
        if value is not None:
            taken = (await conn.execute(select(users.c.name).where(column == value))).first()
            if taken is not None:
                raise UserInputError(
                    N_("%(option)s: %(value)s already belongs to %(user)s"),
                    option=option,
                    value=value,
                    user=taken.name,
                )
    result = await conn.execute(
        users.insert().returning(users.c.id),
        {
            "name": name.strip(),
            "role": role.value,
            "email": email,
            "telegram_chat_id": chat_id,
            "phone": e164,
            "created_at": utcnow(),
        },
    )
    return UserRecord(int(result.scalar_one()), name.strip(), role, email, chat_id, e164)


async def list_users(conn: AsyncConnection) -> list[UserRecord]:
    """Every user, admins first, then by name."""
    rows = await conn.execute(select(users).order_by(users.c.role, users.c.name, users.c.id))
    return [_user(row) for row in rows]


async def has_admin(conn: AsyncConnection) -> bool:
    """Whether any admin exists (before the first one, `user add` needs no acting user)."""
    query = select(users.c.id).where(users.c.role == Role.ADMIN.value).limit(1)
    return (await conn.execute(query)).first() is not None


async def user_by_email(conn: AsyncConnection, email: str) -> UserRecord | None:
    """The user with this e-mail address (case-insensitive), if any."""
    row = (await conn.execute(select(users).where(users.c.email == email.strip().lower()))).first()
    return None if row is None else _user(row)


async def user_by_id(conn: AsyncConnection, user_id: int) -> UserRecord | None:
    """The user with this id (a console session names its user so), if any."""
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    return None if row is None else _user(row)


async def user_by_telegram_chat(conn: AsyncConnection, chat_id: str | int) -> UserRecord | None:
    """The user whose Telegram chat this is (for the Telegram /push command), if any."""
    query = select(users).where(users.c.telegram_chat_id == str(chat_id))
    row = (await conn.execute(query)).first()
    return None if row is None else _user(row)


async def acting_user(conn: AsyncConnection, email: str | None) -> UserRecord:
    """The user a command acts as; RoleError when none is named or the e-mail is unknown."""
    if email is None or not email.strip():
        raise RoleError(
            N_(
                "who is acting? pass %(option)s or set %(variable)s to a trainer's or "
                "an admin's e-mail (see %(command)s)"
            ),
            option="--as EMAIL",
            variable=ACTING_USER_ENV,
            command="`learnbot user list`",
        )
    user = await user_by_email(conn, email)
    if user is None:
        raise RoleError(
            N_("no user has the e-mail %(email)s (see %(command)s)"),
            email=repr(email.strip()),
            command="`learnbot user add`",
        )
    return user


def can_act_on(user: UserRecord, owner_id: int | None) -> bool:
    """Whether `user` may act on a cohort owned by `owner_id` (None: no owner, admins only)."""
    return user.is_admin or (owner_id is not None and owner_id == user.id)


def check_cohort_access(user: UserRecord, *, cohort_name: str, owner_id: int | None) -> None:
    """RoleError naming the cohort unless `user` may act on it."""
    if not can_act_on(user, owner_id):
        raise RoleError(
            N_(
                "%(user)s is a trainer and may not act on cohort %(cohort)s: "
                "it belongs to another trainer (ask an admin)"
            ),
            user=user.label(),
            cohort=repr(cohort_name),
        )


def require_admin(user: UserRecord, action: Text) -> None:
    """RoleError unless `user` is an admin; `action` says what, e.g. `N_("add users")`."""
    if not user.is_admin:
        raise RoleError(
            N_("%(user)s is a trainer: only an admin may %(action)s"),
            user=user.label(),
            action=action,
        )
