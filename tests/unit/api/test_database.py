from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ktrdr.api.database import OperationStore, OperationStoreError

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


def _record(store: OperationStore, operation_id: str) -> None:
    store.create(
        operation_id=operation_id,
        kind="training",
        status="completed",
        execution_mode="local",
        strategy="s",
        request={"symbols": ["EURUSD"]},
        result={"model_id": f"s/{operation_id}"},
    )


@contextmanager
def _locked_by_another_process(path: Path) -> Iterator[None]:
    """``path`` held under SQLite's exclusive write lock by a separate Python process."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)


def test_a_database_locked_by_another_process_is_named_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    store = OperationStore(f"sqlite:///{path}", busy_timeout_s=0.2)
    _record(store, "a")
    with _locked_by_another_process(path):
        with pytest.raises(OperationStoreError) as caught:
            _record(store, "b")
        message = str(caught.value)
        assert f"could not record operation b: the operations database {path}" in message
        assert "another process holds it locked (waited 0.2 s)" in message
        assert "KTRDR_DATABASE_URL" in message
        # Readers are not held up by the writer (WAL).
        assert [op["operation_id"] for op in store.list()] == ["a"]
    _record(store, "b")  # once the lock is gone, the same store writes again
    assert [op["operation_id"] for op in store.list()] == ["b", "a"]
    store.close()


@pytest.mark.parametrize(
    "content", [b"this is no database" * 400, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_a_damaged_database_file_is_refused_at_open_naming_it(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "ops.db"
    path.write_bytes(content)
    with pytest.raises(OperationStoreError) as caught:
        OperationStore(f"sqlite:///{path}")
    message = str(caught.value)
    assert f"could not open it: the operations database {path} failed" in message
    assert "is not a usable SQLite database. Move the file aside" in message
    assert path.read_bytes() == content  # nothing was written over it


def test_a_database_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    OperationStore(f"sqlite:///{path}").close()
    store = OperationStore(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(OperationStoreError, match="cannot be opened for writing"):
        _record(store, "a")
    store.close()


def test_one_row_with_damaged_fields_is_listed_with_its_problem_and_hides_no_other(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ops.db"
    store = OperationStore(f"sqlite:///{path}")
    for name in ("a", "b", "c"):
        _record(store, name)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE operations SET request = '{not json' WHERE operation_id = 'b'")
        db.execute("UPDATE operations SET created_at = 'yesterday' WHERE operation_id = 'c'")

    listed = {op["operation_id"]: op for op in store.list()}
    assert set(listed) == {"a", "b", "c"}
    assert listed["a"]["problem"] is None and listed["a"]["request"] == {"symbols": ["EURUSD"]}
    damaged = listed["b"]
    assert damaged["request"] is None and damaged["result"] == {"model_id": "s/b"}
    assert damaged["problem"].startswith(f"operation 'b' in the operations database {path}: ")
    assert "request cannot be read" in damaged["problem"]
    assert "created_at cannot be read" in listed["c"]["problem"]
    assert listed["c"]["created_at"] is None
    assert store.get("b")["problem"] == damaged["problem"]
    store.close()
