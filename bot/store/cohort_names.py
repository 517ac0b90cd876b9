"""A cohort's name per locale: what learners read in their language, and how it is stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.i18n import fallback_chain, parse_locale
from bot.store.tables import cohorts

MAX_NAME_LENGTH = 200  # as cohorts.name


def stored_names(value: Any) -> dict[str, str]:
    """The `cohorts.names` column as a dict; anything else stored there (by hand) is ignored."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str) and v.strip()}


def localized_name(default: str, names: Mapping[str, str], locale: str) -> str:
    """The name for `locale` or one of its parents, else `default` (the cohort's own name)."""
    if not names:
        return default
    try:
        key = parse_locale(locale)
    except ValueError:
        return default
    # With itself as the source, the chain is the locale and its parents (pt_BR, pt).
    for link in fallback_chain(key, source=key):
        if link in names:
            return names[link]
    return default


async def set_cohort_name(
    conn: AsyncConnection, cohort_id: int, locale: str, name: str | None
) -> dict[str, str]:
    """Set (or, with None, remove) a cohort's name in one locale: the names it now has."""
    names = await _names(conn, cohort_id)
    if name is None:
        names.pop(locale, None)
    else:
        names[locale] = name
    await _store(conn, cohort_id, names)
    return names


async def add_missing_names(
    conn: AsyncConnection, cohort_id: int, names: Mapping[str, str]
) -> dict[str, str]:
    """Give a cohort the names it lacks; a name already set (by a trainer) is kept."""
    current = await _names(conn, cohort_id)
    merged = {**names, **current}
    if merged != current:
        await _store(conn, cohort_id, merged)
    return merged


async def _names(conn: AsyncConnection, cohort_id: int) -> dict[str, str]:
    value = (await conn.execute(select(cohorts.c.names).where(cohorts.c.id == cohort_id))).scalar()
    return stored_names(value)


async def _store(conn: AsyncConnection, cohort_id: int, names: Mapping[str, str]) -> None:
    # Sorted, so the stored JSON does not depend on the order the names were given in.
    value = {key: names[key] for key in sorted(names)} or None
    await conn.execute(cohorts.update().where(cohorts.c.id == cohort_id).values(names=value))
