"""The runs ledger: rows as a run ends, and a database that fails never fails a training."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.errors import StrategyConfigError
from ktrdr.runs.ledger import (
    COLUMNS,
    RunLedger,
    RunRecorder,
    open_ledger,
    quantile,
    step_seconds,
    with_chosen_path,
)
from tests.training_helpers import short_spec

pytestmark = pytest.mark.unit


def _ledger(tmp_path: Path) -> RunLedger:
    return RunLedger(f"sqlite:///{tmp_path / 'ktrdr.db'}")


def test_a_finished_run_is_one_row_with_its_steps_intervals_and_verdict(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    spec = short_spec(None, run_id="r1")
    recorder = RunRecorder(ledger, spec, mode="local", backend="pool", operation_id="op1")
    clock = [100.0]
    manager = GenericProgressManager("r1", clock=lambda: clock[0])
    for step in (1, 2, 7):
        manager.start_step(step)
        recorder.progress(manager.snapshot().to_dict())
        clock[0] += {1: 0.5, 2: 0.25, 7: 3.0}[step]
    result = {
        "metadata": {
            "execution_path": "training_executor",
            "device": "cpu",
            "torch_threads": 1,
            "weights_digest": "ab" * 32,
        },
        "test_metrics": {"accuracy": 0.55, "verdict": {"better_baseline": 0.51}},
    }
    row = recorder.finish("completed", result=result, peak_rss_bytes=123)
    assert row is not None and recorder.finish("completed") is None  # once only
    [stored] = ledger.rows()
    assert {k: stored[k] for k in ("run_id", "operation_id", "status", "execution_mode")} == {
        "run_id": "r1",
        "operation_id": "op1",
        "status": "completed",
        "execution_mode": "local",
    }
    assert stored["backend"] == "pool" and stored["strategy"] == "neuro_mean_reversion"
    assert stored["execution_path"] == "training_executor" and stored["device"] == "cpu"
    assert stored["test_accuracy"] == 0.55 and stored["better_baseline"] == 0.51
    assert stored["peak_rss_bytes"] == 123 and stored["threads"] == 1
    assert stored["step_seconds"]["1"] == pytest.approx(0.5)
    assert stored["step_seconds"]["2"] == pytest.approx(0.25)
    assert stored["progress_interval_p50_s"] is not None
    assert stored["duration_s"] >= 0 and stored["ended_at"] >= stored["started_at"]
    assert set(stored) == {"id", *(name for name, _, _ in COLUMNS)}


def test_a_failed_or_cancelled_run_keeps_the_path_chosen_where_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", "100")
    ledger = _ledger(tmp_path)
    spec = with_chosen_path(short_spec(None, run_id="r2"))
    assert spec.execution_path == "training_executor"
    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", "0")  # a rollback meanwhile
    assert with_chosen_path(spec).execution_path == "training_executor"  # chosen once
    failed = RunRecorder(ledger, spec, mode="host", backend="host")
    failed.finish("failed", error_type="DataError", error="no bars")
    later = with_chosen_path(short_spec(None, run_id="r3"))
    cancelled = RunRecorder(ledger, later, mode="local", backend="pool")
    token = ThreadingCancellationToken()
    token.cancel("stop")
    assert token.cancelled_at is not None
    cancelled.cancel_requested(token.cancelled_at)
    time.sleep(0.01)  # the cancel is obeyed a little later (a measured interval, not a wait)
    cancelled.finish("cancelled")
    first, second = ledger.rows()
    assert (first["status"], first["error_type"], first["execution_path"]) == (
        "failed",
        "DataError",
        "training_executor",
    )
    assert first["test_accuracy"] is None and first["cancel_latency_s"] is None
    assert second["status"] == "cancelled" and second["cancel_latency_s"] >= 0.01
    assert second["execution_path"] == "strategy_trainer"  # chosen at 0%


def test_a_database_that_cannot_be_written_is_a_warning_never_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "ktrdr.db").mkdir()  # a folder where the database file should be
    ledger = _ledger(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ktrdr.runs.ledger"):
        row = RunRecorder(ledger, short_spec(None, run_id="r4"), mode="local", backend="x").finish(
            "completed"
        )
    assert row is not None and row["status"] == "completed"
    assert "runs ledger" in caplog.text and "KTRDR_LEDGER=off" in caplog.text

    # Locked by another process for longer than the ledger waits: that row is given up.
    locked_at = tmp_path / "locked"
    locked_at.mkdir()
    ledger = RunLedger(f"sqlite:///{locked_at / 'ktrdr.db'}", busy_timeout_s=0.2)
    assert ledger.prepare()
    holder = sqlite3.connect(locked_at / "ktrdr.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ktrdr.runs.ledger"):
            assert ledger.record({"run_id": "r5", "status": "completed"}) is False
        assert "could not record run r5" in caplog.text
    finally:
        holder.rollback()
        holder.close()
    assert ledger.record({"run_id": "r6", "status": "completed"}) is True
    assert [r["run_id"] for r in ledger.rows()] == ["r6"]
    with pytest.raises(ValueError, match="not ledger columns: nonsense"):
        ledger.record({"nonsense": 1})


def test_the_ledger_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_LEDGER", "off")
    assert open_ledger(str(tmp_path)) is None
    monkeypatch.setenv("KTRDR_LEDGER", "on")
    ledger = open_ledger(str(tmp_path))
    assert ledger is not None and ledger.url == f"sqlite:///{tmp_path / 'ktrdr.db'}"
    monkeypatch.setenv("KTRDR_LEDGER", "sometimes")
    with pytest.raises(StrategyConfigError, match="KTRDR_LEDGER='sometimes' is not valid"):
        open_ledger(str(tmp_path))


def test_step_seconds_and_quantiles_by_hand() -> None:
    assert step_seconds({1: 10.0, 2: 10.5, 7: 11.0}, 20.0) == {"1": 0.5, "2": 0.5, "7": 9.0}
    assert quantile([], 0.5) is None
    assert quantile([0.1, 0.3, 0.2, 0.4], 0.5) == pytest.approx(0.25)
    assert quantile([0.1, 0.3, 0.2, 0.4], 0.95) == pytest.approx(0.385)
