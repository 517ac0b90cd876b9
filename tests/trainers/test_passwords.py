"""Console passwords and invitations: `user set-password`, `user invite`, and their checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import utcnow
from bot.store.tables import invitations, users
from bot.trainers.passwords import (
    PasswordError,
    accept_invitation,
    authenticate,
    invite,
    invited_user,
    set_password,
)
from tests.trainers.conftest import Cli, Staff

GOOD = "a long enough password"


async def test_a_password_is_stored_as_an_argon2_hash_and_checked(
    engine: AsyncEngine, staff: Staff
) -> None:
    async with engine.begin() as conn:
        await set_password(conn, "Tom@example.org ", GOOD)
        stored = await conn.scalar(select(users.c.password_hash).where(users.c.id == staff.tom.id))
        assert stored is not None and stored.startswith("$argon2id$") and GOOD not in stored
        assert await authenticate(conn, "tom@example.org", GOOD) == staff.tom
        assert await authenticate(conn, "tom@example.org", GOOD + "!") is None
        assert await authenticate(conn, "una@example.org", GOOD) is None  # she has none yet
        assert await authenticate(conn, "nobody@example.org", GOOD) is None


async def test_set_password_names_an_unknown_email_and_a_short_password(
    engine: AsyncEngine, staff: Staff
) -> None:
    async with engine.begin() as conn:
        with pytest.raises(PasswordError, match=r"no user has the e-mail 'x@example\.org'"):
            await set_password(conn, "x@example.org", GOOD)
        with pytest.raises(PasswordError, match="PASSWORD: too short: at least 12 characters"):
            await set_password(conn, "tom@example.org", "short")


async def test_an_invitation_is_a_hashed_token_used_once(engine: AsyncEngine, staff: Staff) -> None:
    async with engine.begin() as conn:
        made = await invite(conn, "una@example.org", "https://learn.example.org/")
    assert made.link.startswith("https://learn.example.org/console/invite/")
    token = made.link.rsplit("/", 1)[1]
    assert made.expires_at - utcnow() > timedelta(hours=71)
    async with engine.begin() as conn:
        stored = (await conn.execute(select(invitations))).one()
        assert token not in stored.token_hash  # only its hash is kept
        assert await invited_user(conn, token) == staff.una
        with pytest.raises(PasswordError, match="too short"):
            await accept_invitation(conn, token, "short")
        assert await accept_invitation(conn, token, GOOD) == staff.una
        assert await authenticate(conn, "una@example.org", GOOD) == staff.una
        assert await invited_user(conn, token) is None
        with pytest.raises(PasswordError, match="expired or was already used"):
            await accept_invitation(conn, token, GOOD)


async def test_an_expired_invitation_cannot_be_used(engine: AsyncEngine, staff: Staff) -> None:
    async with engine.begin() as conn:
        made = await invite(conn, "una@example.org", "http://x", now=utcnow() - timedelta(hours=73))
        token = made.link.rsplit("/", 1)[1]
        assert await invited_user(conn, token) is None
        with pytest.raises(PasswordError, match="expired"):
            await accept_invitation(conn, token, GOOD)


async def test_cli_set_password_reads_stdin_when_it_is_not_a_terminal(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    result = await cli("user", "set-password", "ada@example.org", input=GOOD + "\n")
    assert result.exit_code == 0, result.output
    assert "Ada <ada@example.org> can now sign in to the console" in result.output
    async with engine.connect() as conn:
        assert await authenticate(conn, "ada@example.org", GOOD) == staff.admin


async def test_cli_set_password_errors_are_one_line_naming_the_problem(
    cli: Cli, staff: Staff
) -> None:
    unknown = await cli("user", "set-password", "who@example.org", input=GOOD + "\n")
    assert unknown.exit_code == 1
    assert unknown.output.strip() == (
        "Error: EMAIL: no user has the e-mail 'who@example.org' (see `learnbot user list`)"
    )
    short = await cli("user", "set-password", "ada@example.org", input="tiny\n")
    assert short.exit_code == 1
    assert short.output.strip() == "Error: PASSWORD: too short: at least 12 characters"


async def test_cli_invite_prints_a_one_time_link(
    cli: Cli, engine: AsyncEngine, staff: Staff
) -> None:
    result = await cli("user", "invite", "tom@example.org")
    assert result.exit_code == 0, result.output
    link = result.stdout.splitlines()[0]
    assert link.startswith("http://127.0.0.1:8080/console/invite/")
    assert "for Tom <tom@example.org>, once, until" in result.stderr
    async with engine.connect() as conn:
        assert await invited_user(conn, link.rsplit("/", 1)[1]) == staff.tom
    unknown = await cli("user", "invite", "who@example.org")
    assert unknown.exit_code == 1 and "EMAIL: no user has the e-mail" in unknown.output


class Terminal:
    """A stdin that is a terminal."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_password_is_asked_twice_unechoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import getpass
    import sys

    import click

    from bot.trainers.commands import _read_password
    from bot.trainers.text import CliUi

    answers = iter([GOOD, GOOD, GOOD, "something else"])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(getpass, "getpass", ask)
    assert _read_password(CliUi.english()) == GOOD
    assert prompts == ["New password: ", "The same password again: "]
    with pytest.raises(click.ClickException, match="PASSWORD: the two passwords differ"):
        _read_password(CliUi.english())
