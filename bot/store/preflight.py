"""Before serving: can the database be opened and written? One line naming the setting if not."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.store.db import create_engine

SETTING = "LEARNBOT_DATABASE_URL"
_PROBE = "learnbot_write_probe"


class DatabaseCheckError(Exception):
    """The database cannot be opened or written; the message names LEARNBOT_DATABASE_URL."""


async def check_database(database_url: str, *, create_folder: bool = False) -> None:
    """DatabaseCheckError unless the database opens and takes writes.

    A SQLite file's missing folder is refused (a typo would start a new, empty database
    elsewhere) unless `create_folder`, as for the default `./data` of a fresh checkout.
    Nothing is changed: SQLite creates a table and rolls it back, PostgreSQL is asked whether
    its transactions are read-only (a standby, or default_transaction_read_only).
    """
    url = make_url(database_url)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite:
        _check_sqlite_folder(url.database or "", create_folder=create_folder)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            if sqlite:
                # A write, rolled back: refused by a read-only file, folder, mount or
                # `mode=ro` URL ("attempt to write a readonly database"). The lock alone
                # (BEGIN IMMEDIATE) is granted even on a read-only connection.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    await conn.exec_driver_sql(f"CREATE TABLE main.{_PROBE} (x INTEGER)")
                finally:
                    await conn.exec_driver_sql("ROLLBACK")
            else:
                read_only = await conn.exec_driver_sql("SHOW transaction_read_only")
                if read_only.scalar() == "on":
                    raise DatabaseCheckError(
                        f"{SETTING}: the database is read-only (transaction_read_only is on)"
                    )
    except (SQLAlchemyError, OSError) as exc:
        reason = _reason(exc, url.password)
        raise DatabaseCheckError(f"{SETTING}: cannot open the database: {reason}") from None
    finally:
        await engine.dispose()


def _check_sqlite_folder(database: str, *, create_folder: bool) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).expanduser().parent
    if folder.is_dir():
        return
    if not create_folder:
        raise DatabaseCheckError(f"{SETTING}: the folder {str(folder)!r} does not exist")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseCheckError(
            f"{SETTING}: cannot create the folder {str(folder)!r}: {exc.strerror}"
        ) from None


def _reason(exc: BaseException, password: str | None) -> str:
    # The driver's own words, without SQLAlchemy's statement and link; never the password.
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text.replace(password, "***") if password else text
