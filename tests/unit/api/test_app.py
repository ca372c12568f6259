"""The backend app over HTTP when its database fails: a clear 503 naming the database, and
every readable row listed even when one is damaged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ktrdr.api import create_app, database
from ktrdr.api.database import OperationStore
from ktrdr.service_client import bearer_headers
from tests.unit.api.test_database import _locked_by_another_process, _record

pytestmark = pytest.mark.unit

START = {
    "strategy_name": "neuro_mean_reversion",
    "symbols": ["EURUSD"],
    "timeframes": ["1h"],
    "start_date": "2017-01-01",
    "end_date": "2017-02-28",
    "execution_mode": "local",
}


def _app(tmp_path: Path, data_dir: Path) -> TestClient:
    return TestClient(
        create_app(
            models_dir=tmp_path / "models",
            data_dir=data_dir,
            database=f"sqlite:///{tmp_path / 'ops.db'}",
            token="t",
        ),
        headers=bearer_headers("t"),
    )


def test_a_start_while_another_process_locks_the_database_is_a_503_naming_it(
    tmp_path: Path, sample_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "DEFAULT_BUSY_TIMEOUT_S", 0.2)
    with _app(tmp_path, sample_data_dir) as client:
        with _locked_by_another_process(tmp_path / "ops.db"):
            answer = client.post("/api/v1/trainings/start", json=START)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            detail = answer.json()["detail"]
            assert f"the operations database {tmp_path / 'ops.db'} failed" in detail
            assert "another process holds it locked" in detail
        # Nothing was started for the refused request.
        assert client.get("/api/v1/operations").json()["operations"] == []


def test_one_damaged_row_is_listed_with_its_problem_and_the_others_still_show(
    tmp_path: Path, sample_data_dir: Path
) -> None:
    path = tmp_path / "ops.db"
    store = OperationStore(f"sqlite:///{path}")
    for name in ("a", "b", "c"):
        _record(store, name)
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE operations SET result = 'oops{' WHERE operation_id = 'b'")
    with _app(tmp_path, sample_data_dir) as client:
        listed = client.get("/api/v1/operations")
        assert listed.status_code == 200, listed.text
        rows = {op["operation_id"]: op for op in listed.json()["operations"]}
        assert set(rows) == {"a", "b", "c"}
        assert rows["a"]["problem"] is None
        assert "operation 'b' in the operations database" in rows["b"]["problem"]
        assert "result cannot be read" in rows["b"]["problem"]
        one = client.get("/api/v1/operations/b")
        assert one.status_code == 200 and one.json()["problem"] == rows["b"]["problem"]
