"""Where the database is and how it is opened (operations and the runs ledger share it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from ktrdr.database import database_url, display_name, open_engine

pytestmark = pytest.mark.unit


def test_the_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert database_url(data_dir=tmp_path) == f"sqlite:///{tmp_path / 'ktrdr.db'}"
    monkeypatch.setenv("KTRDR_DATABASE_URL", "sqlite:///elsewhere.db")
    assert database_url(data_dir=tmp_path) == "sqlite:///elsewhere.db"
    assert database_url("sqlite://", tmp_path) == "sqlite://"


def test_sqlite_is_opened_in_wal_mode_with_the_busy_timeout(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'k.db'}", busy_timeout_s=1.5)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 1500
    assert display_name(engine) == f"the operations database {tmp_path / 'k.db'}"
    engine.dispose()
