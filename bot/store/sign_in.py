"""Console sign-in rows: a user's password hash and one-time invitation tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.tables import invitations, users


async def set_password_hash(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    """Store a user's new password hash (replacing any old one)."""
    await conn.execute(
        users.update().where(users.c.id == user_id).values(password_hash=password_hash)
    )


async def password_hash_of(conn: AsyncConnection, user_id: int) -> str | None:
    """The user's password hash; None when they have no password (or do not exist)."""
    value = await conn.scalar(select(users.c.password_hash).where(users.c.id == user_id))
    return None if value is None else str(value)


async def add_invitation(
    conn: AsyncConnection, user_id: int, token_hash: str, *, now: datetime, expires_at: datetime
) -> None:
    """Record an invitation by the hash of its token."""
    await conn.execute(
        invitations.insert(),
        {
            "user_id": user_id,
            "token_hash": token_hash,
            "created_at": now,
            "expires_at": expires_at,
            "used_at": None,
        },
    )


async def open_invitation(conn: AsyncConnection, token_hash: str, now: datetime) -> int | None:
    """The user id of an unused, unexpired invitation with this token hash, if any."""
    value = await conn.scalar(
        select(invitations.c.user_id).where(
            invitations.c.token_hash == token_hash,
            invitations.c.used_at.is_(None),
            invitations.c.expires_at > now,
        )
    )
    return None if value is None else int(value)


async def use_invitation(conn: AsyncConnection, token_hash: str, now: datetime) -> int | None:
    """Mark an open invitation used and return its user id; None if it was not open.

    One conditional UPDATE: two requests racing with the same link cannot both use it.
    """
    user_id = await open_invitation(conn, token_hash, now)
    if user_id is None:
        return None
    result = await conn.execute(
        invitations.update()
        .where(
            invitations.c.token_hash == token_hash,
            invitations.c.used_at.is_(None),
            invitations.c.expires_at > now,
        )
        .values(used_at=now)
    )
    return user_id if result.rowcount == 1 else None
