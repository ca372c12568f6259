"""Operations in a database, through SQLAlchemy Core (SQLite under the data folder by default).

Every failure of the database itself (locked by another process, not a database, read-only,
full) is raised as ``OperationStoreError`` naming the database and what to do. A row whose
stored JSON or timestamps cannot be read is still listed, with those fields empty and a
``problem`` that names the row; one damaged row never hides the others.
"""

from __future__ import annotations

import builtins
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ktrdr.async_infrastructure.status import ACTIVE
from ktrdr.database import DEFAULT_BUSY_TIMEOUT_S, display_name, explain, open_engine
from ktrdr.errors import KtrdrError

logger = logging.getLogger(__name__)


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
_TIME_FIELDS = ("created_at", "updated_at")


class OperationStoreError(KtrdrError):
    """The operations database cannot be used; the message names it and says what to do."""

    exit_code = 1


class OperationStore:
    """Create, update, read and list operations; the schema is created on construction.

    Raises OperationStoreError (from any method) when the database itself fails.
    """

    def __init__(self, url: str, *, busy_timeout_s: float | None = None) -> None:
        self.busy_timeout_s = DEFAULT_BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        self.engine: Engine = open_engine(url, self.busy_timeout_s)
        self.name = display_name(self.engine)
        with self._errors("open it"):
            metadata.create_all(self.engine)
        # One writer at a time inside this process; SQLite's own lock covers other processes.
        self._write = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise OperationStoreError(explain(exc, self.name, doing, self.busy_timeout_s)) from exc

    @contextmanager
    def _writing(self, doing: str) -> Iterator[Connection]:
        with self._errors(doing), self._write, self.engine.begin() as connection:
            yield connection

    def create(self, **fields: Any) -> dict[str, Any]:
        now = time.time()
        row = {"created_at": now, "updated_at": now, **_encode(fields)}
        with self._writing(f"record operation {fields['operation_id']}") as connection:
            connection.execute(operations.insert().values(**row))
        return self.get(fields["operation_id"]) or {}

    def update(self, operation_id: str, *, only_if_active: bool = False, **fields: Any) -> bool:
        """Change fields of an operation; with ``only_if_active`` only while it is pending or
        running (so a late message cannot reopen a finished operation). True if changed."""
        statement = update(operations).where(operations.c.operation_id == operation_id)
        if only_if_active:
            statement = statement.where(operations.c.status.in_(ACTIVE))
        with self._writing(f"update operation {operation_id}") as connection:
            changed = connection.execute(
                statement.values(updated_at=time.time(), **_encode(fields))
            ).rowcount
        return bool(changed)

    def get(self, operation_id: str) -> dict[str, Any] | None:
        with self._errors(f"read operation {operation_id}"), self.engine.connect() as connection:
            row = connection.execute(
                select(operations).where(operations.c.operation_id == operation_id)
            ).first()
        return None if row is None else self._decode(dict(row._mapping))

    def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(operations).order_by(operations.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(operations.c.status == status)
        with self._errors("list operations"), self.engine.connect() as connection:
            rows = connection.execute(query).fetchall()
        return [self._decode(dict(row._mapping)) for row in rows]

    def active(self, execution_mode: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every pending or running operation (of ``execution_mode``), oldest first."""
        query = select(operations).where(operations.c.status.in_(ACTIVE))
        if execution_mode is not None:
            query = query.where(operations.c.execution_mode == execution_mode)
        with self._errors("list unfinished operations"), self.engine.connect() as connection:
            rows = connection.execute(query.order_by(operations.c.created_at)).fetchall()
        return [self._decode(dict(row._mapping)) for row in rows]

    def fail_active(self, reason: str, execution_mode: str | None = None) -> int:
        """Mark every pending or running operation (of ``execution_mode``) failed with
        ``reason``; how many were."""
        statement = update(operations).where(operations.c.status.in_(ACTIVE))
        if execution_mode is not None:
            statement = statement.where(operations.c.execution_mode == execution_mode)
        with self._writing("mark unfinished operations failed") as connection:
            return int(
                connection.execute(
                    statement.values(status="failed", error=reason, updated_at=time.time())
                ).rowcount
            )

    def _decode(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its JSON read; a field that cannot be read is None and named in
        ``problem`` (with the row and the database), so the rest of the row still shows."""
        damaged: list[str] = []
        for key in _JSON_FIELDS:
            if row.get(key) is not None:
                try:
                    row[key] = json.loads(row[key])
                except (TypeError, ValueError):
                    damaged.append(key)
                    row[key] = None
        for key in _TIME_FIELDS:
            value = row.get(key)
            if not isinstance(value, int | float) or not math.isfinite(value):
                damaged.append(key)
                row[key] = None
        row["problem"] = None
        if damaged:
            row["problem"] = (
                f"operation {row.get('operation_id')!r} in {self.name}: "
                f"{', '.join(damaged)} cannot be read (edited or damaged outside ktrdr); "
                "its other fields are shown. Delete the row or write valid JSON back"
            )
            logger.warning("%s", row["problem"])
        return row


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        key: json.dumps(value) if key in _JSON_FIELDS and value is not None else value
        for key, value in fields.items()
    }
