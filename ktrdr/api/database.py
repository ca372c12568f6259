"""Operations in a database, through SQLAlchemy Core (SQLite under the data folder by default)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from ktrdr import settings
from ktrdr.async_infrastructure.status import ACTIVE

metadata = MetaData()

operations = Table(
    "operations",
    metadata,
    Column("operation_id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("execution_mode", String(8), nullable=False),
    Column("strategy", String(200), nullable=False),
    Column("request", Text, nullable=False),
    Column("progress", Text),
    Column("result", Text),
    Column("error", Text),
    Column("warning", Text),
    Column("host_session_id", String(64)),
    Column("model_id", String(400)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

_JSON_FIELDS = ("request", "progress", "result")


def database_url(explicit: str | None = None, data_dir: str | Path | None = None) -> str:
    """``explicit``, else ``KTRDR_DATABASE_URL``, else SQLite at ``{data dir}/ktrdr.db``."""
    import os

    if explicit:
        return explicit
    value = os.environ.get("KTRDR_DATABASE_URL", "").strip()
    if value:
        return value
    folder = Path(settings.data_dir(data_dir))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder.absolute() / 'ktrdr.db'}"


class OperationStore:
    """Create, update, read and list operations; the schema is created on construction."""

    def __init__(self, url: str) -> None:
        sqlite = url.startswith("sqlite")
        self.engine: Engine = create_engine(
            url, connect_args={"check_same_thread": False} if sqlite else {}
        )
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        # One writer at a time inside this process; SQLite's own lock covers other processes.
        self._write = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._write, self.engine.begin() as connection:
            yield connection

    def create(self, **fields: Any) -> dict[str, Any]:
        now = time.time()
        row = {"created_at": now, "updated_at": now, **_encode(fields)}
        with self._writing() as connection:
            connection.execute(operations.insert().values(**row))
        return self.get(fields["operation_id"]) or {}

    def update(self, operation_id: str, *, only_if_active: bool = False, **fields: Any) -> bool:
        """Change fields of an operation; with ``only_if_active`` only while it is pending or
        running (so a late message cannot reopen a finished operation). True if changed."""
        statement = update(operations).where(operations.c.operation_id == operation_id)
        if only_if_active:
            statement = statement.where(operations.c.status.in_(ACTIVE))
        with self._writing() as connection:
            changed = connection.execute(
                statement.values(updated_at=time.time(), **_encode(fields))
            ).rowcount
        return bool(changed)

    def get(self, operation_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(operations).where(operations.c.operation_id == operation_id)
            ).first()
        return None if row is None else _decode(dict(row._mapping))

    def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(operations).order_by(operations.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(operations.c.status == status)
        with self.engine.connect() as connection:
            rows = connection.execute(query).fetchall()
        return [_decode(dict(row._mapping)) for row in rows]

    def fail_active(self, reason: str) -> int:
        """Mark every pending or running operation failed with ``reason``; how many were."""
        with self._writing() as connection:
            return int(
                connection.execute(
                    update(operations)
                    .where(operations.c.status.in_(ACTIVE))
                    .values(status="failed", error=reason, updated_at=time.time())
                ).rowcount
            )


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        key: json.dumps(value) if key in _JSON_FIELDS and value is not None else value
        for key, value in fields.items()
    }


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_FIELDS:
        if row.get(key) is not None:
            row[key] = json.loads(row[key])
    return row


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
