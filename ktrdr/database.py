"""The one database ktrdr keeps: where it is, how it is opened, and its failures in plain words.

The backend's operations and the runs ledger share it: SQLite at ``{data dir}/ktrdr.db`` by
default, any SQLAlchemy URL through ``KTRDR_DATABASE_URL``. SQLite is opened in WAL mode (readers
never wait for the writer) with a busy timeout, so a second process waits for a lock instead of
failing at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr import settings

# SQLAlchemy is imported where an engine is made, never to find the URL: the runs ledger of a
# single ``ktrdr train`` writes SQLite without it (importing it costs that run 3-7%).
if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.exc import SQLAlchemyError

# How long a write waits for another process's lock before it is refused.
DEFAULT_BUSY_TIMEOUT_S = 10.0


def database_url(explicit: str | None = None, data_dir: str | Path | None = None) -> str:
    """``explicit``, else ``KTRDR_DATABASE_URL``, else SQLite at ``{data dir}/ktrdr.db`` (the
    folder is created)."""
    if explicit:
        return explicit
    value = os.environ.get("KTRDR_DATABASE_URL", "").strip()
    if value:
        return value
    folder = Path(settings.data_dir(data_dir))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder.absolute() / 'ktrdr.db'}"


def open_engine(url: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Engine:
    """An engine on ``url``; a SQLite one in WAL mode with ``busy_timeout_s``, usable from any
    thread. Raises SQLAlchemy's errors for a URL it cannot use."""
    from sqlalchemy import create_engine, event

    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"check_same_thread": False} if sqlite else {})
    if sqlite:

        def pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            finally:
                cursor.close()

        event.listen(engine, "connect", pragmas)
    return engine


def display_name(engine: Engine) -> str:
    """The database as a user would find it: a SQLite file's path, else the URL sans password."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return f"the operations database {url.database}" if url.database else "in-memory SQLite"
    return f"the operations database {url.render_as_string(hide_password=True)}"


def explain(exc: SQLAlchemyError, name: str, doing: str, busy_timeout_s: float) -> str:
    """What went wrong with the database, in the words of what to do about it."""
    from sqlalchemy.exc import DBAPIError

    reason = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
    text = reason.lower()
    if "locked" in text or "busy" in text:
        advice = (
            f"another process holds it locked (waited {busy_timeout_s:g} s). Stop the other "
            "program using it (a second backend, an open sqlite3 shell), or give this backend "
            "its own database with KTRDR_DATABASE_URL, then retry"
        )
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        advice = (
            "it is not a usable SQLite database. Move the file aside (keep it if its operations "
            "matter; 'sqlite3 FILE .recover' may rescue them) and start the backend again: it "
            "creates an empty one"
        )
    elif "readonly" in text or "read-only" in text or "unable to open" in text:
        advice = (
            "it cannot be opened for writing. Give the backend's user write access to the file "
            "and its folder, or point KTRDR_DATABASE_URL elsewhere"
        )
    elif "full" in text or "no space" in text:
        advice = "its disk is full. Free space there, then retry"
    else:
        advice = "check that the database is reachable and intact"
    return f"could not {doing}: {name} failed ({reason}); {advice}"
