"""CSRF: every console POST carries its session's token in a hidden field."""

from __future__ import annotations

import secrets

from starlette.datastructures import FormData

from bot.web.console.sessions import Session

FIELD = "csrf_token"


def valid_token(session: Session | None, form: FormData) -> bool:
    """Whether the form's token is the session's (compared in constant time)."""
    sent = form.get(FIELD)
    if session is None or not isinstance(sent, str) or not sent:
        return False
    return secrets.compare_digest(sent.encode("utf-8"), session.csrf.encode("utf-8"))
