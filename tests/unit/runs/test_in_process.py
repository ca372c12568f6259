"""InProcessBackend: real trainings in threads of the test process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from ktrdr.runs import InProcessBackend, RunHandle, run_all
from ktrdr.store.received import receive_artifact
from tests.training_helpers import short_spec

pytestmark = pytest.mark.unit


def test_runs_train_in_queue_order_one_at_a_time(sample_data_dir: Path) -> None:
    backend = InProcessBackend()
    order: list[tuple[str, str]] = []
    lock = threading.Lock()

    def listener(run_id: str, status: str, snapshot: dict[str, Any] | None) -> None:
        with lock:
            if not order or order[-1] != (run_id, status):
                order.append((run_id, status))

    try:
        outcomes = run_all(
            backend,
            [
                short_spec(sample_data_dir, save=False, run_id="one"),
                short_spec(sample_data_dir, save=False, run_id="two"),
            ],
            listener=listener,
        )
    finally:
        backend.shutdown()
    assert [o.status for o in outcomes.values()] == ["completed", "completed"]
    assert order == [
        ("one", "running"),
        ("one", "completed"),
        ("two", "running"),
        ("two", "completed"),
    ]
    for outcome in outcomes.values():
        assert outcome.artifact is not None and outcome.result is not None
        model = receive_artifact(outcome.artifact)
        assert model.manifest["feature_names"] == outcome.result["feature_names"]


def test_a_waiting_run_cancels_at_once_and_a_running_one_through_its_token(
    sample_data_dir: Path,
) -> None:
    backend = InProcessBackend()
    in_training = threading.Event()

    def progress(handle: RunHandle, snapshot: dict[str, Any]) -> None:
        if snapshot.get("step_number") == 7:
            in_training.set()

    try:
        long = backend.start(
            short_spec(sample_data_dir, epochs=500, save=False, run_id="long"), on_progress=progress
        )
        waiting = backend.start(short_spec(sample_data_dir, save=False, run_id="waiting"))
        assert waiting.status() == "pending"
        waiting.cancel()
        assert waiting.wait(0) and waiting.outcome() is not None
        assert waiting.outcome().error == "cancelled before it started"  # type: ignore[union-attr]
        assert in_training.wait(120)
        long.cancel()
        assert long.wait(120)
    finally:
        backend.shutdown()
    outcome = long.outcome()
    assert outcome is not None and outcome.status == "cancelled"
    assert "cancelled by request during" in (outcome.error or "")
    assert waiting.status() == "cancelled"  # it never started later either
