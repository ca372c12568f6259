from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.api.database import OperationStore, database_url

pytestmark = pytest.mark.unit


def test_operations_are_stored_updated_listed_and_survive_a_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    store = OperationStore(url)
    for name in ("a", "b", "c"):
        store.create(
            operation_id=name,
            kind="training",
            status="pending",
            execution_mode="local",
            strategy="s",
            request={"symbols": ["EURUSD"]},
        )
    assert store.update("a", status="completed", result={"model_id": "s/v1"}, model_id="s/v1")
    assert store.update("b", status="running", progress={"percentage": 40.0})
    # A late message cannot reopen an ended operation.
    assert not store.update("a", only_if_active=True, status="running")
    assert store.get("a")["result"] == {"model_id": "s/v1"}
    assert [op["operation_id"] for op in store.list()] == ["c", "b", "a"]
    assert [op["operation_id"] for op in store.list(status="running")] == ["b"]
    store.close()

    reopened = OperationStore(url)
    assert reopened.fail_active("backend restarted") == 2
    assert {op["operation_id"]: op["status"] for op in reopened.list()} == {
        "a": "completed",
        "b": "failed",
        "c": "failed",
    }
    assert reopened.get("b")["error"] == "backend restarted"
    assert reopened.get("b")["progress"] == {"percentage": 40.0}
    assert reopened.get("missing") is None


def test_the_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert database_url(data_dir=tmp_path) == f"sqlite:///{tmp_path / 'ktrdr.db'}"
    monkeypatch.setenv("KTRDR_DATABASE_URL", "sqlite:///elsewhere.db")
    assert database_url(data_dir=tmp_path) == "sqlite:///elsewhere.db"
    assert database_url("sqlite://", tmp_path) == "sqlite://"
