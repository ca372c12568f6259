"""RunPool with real spawned workers: queueing, cancellation, failures and crashes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ktrdr.config import load_strategy_config
from ktrdr.errors import StrategyConfigError
from ktrdr.runs import RunHandle, RunPool
from ktrdr.store.received import receive_artifact
from ktrdr.training.run_spec import RunSpec, build_run_spec
from tests.conftest import STRATEGIES_DIR

pytestmark = [pytest.mark.unit, pytest.mark.slow]

CONFIG = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 2})


def request(data_dir: Path, **fields: Any) -> RunSpec:
    defaults: dict[str, Any] = {
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "start_date": "2017-01-01",
        "end_date": "2017-03-31",
        "save": False,
        "data_dir": data_dir,
        "threads": 1,
    }
    return build_run_spec(CONFIG, **{**defaults, **fields})


def test_runs_queue_beyond_the_cap_and_report_progress(sample_data_dir: Path) -> None:
    pool = RunPool(max_running=1)
    seen: dict[str, list[float]] = {"first": [], "second": []}

    def listen(handle: RunHandle, snapshot: dict[str, Any]) -> None:
        assert snapshot["operation_id"] == handle.run_id
        seen[handle.run_id].append(snapshot["percentage"])

    first = pool.start(request(sample_data_dir, run_id="first"), on_progress=listen)
    second = pool.start(request(sample_data_dir, run_id="second"), on_progress=listen)
    assert (first.status(), second.status()) == ("running", "pending")
    assert (pool.running, pool.pending) == (1, 1)
    assert first.wait(120) and second.wait(120)
    for handle in (first, second):
        outcome = handle.outcome()
        assert outcome is not None and outcome.status == "completed", outcome
        assert outcome.artifact is not None
        artifact = receive_artifact(outcome.artifact)
        assert artifact.manifest["feature_names"] == outcome.result["feature_names"]
        assert seen[handle.run_id][-1] == 100.0
        assert seen[handle.run_id] == sorted(seen[handle.run_id])  # never backwards


def test_a_pending_run_cancels_at_once_and_a_running_one_through_its_token(
    sample_data_dir: Path,
) -> None:
    pool = RunPool(max_running=1)
    long = request(
        sample_data_dir,
        end_date="2017-12-31",
        overrides={"training.epochs": 2000, "training.early_stopping": None},
    )
    running = pool.start(long)
    waiting = pool.start(request(sample_data_dir))
    waiting.cancel()
    assert waiting.status() == "cancelled" and waiting.wait(0)
    deadline = time.monotonic() + 60
    while (running.snapshot() or {}).get("step_number") != 7 and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    running.cancel(grace_s=30)
    assert running.wait(30)
    outcome = running.outcome()
    assert outcome is not None and outcome.status == "cancelled"
    assert "cancelled by request" in (outcome.error or "")
    assert time.monotonic() - started < 10  # the token, not the grace period's kill


def test_a_failing_run_reports_its_error_and_a_killed_one_its_signal(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    pool = RunPool(max_running=2)
    missing = pool.start(request(tmp_path / "empty"))
    long = pool.start(
        request(
            sample_data_dir,
            end_date="2017-12-31",
            overrides={"training.epochs": 2000, "training.early_stopping": None},
        )
    )
    assert missing.wait(60)
    failed = missing.outcome()
    assert failed is not None and failed.status == "failed"
    assert failed.error_type == "DataError" and "EURUSD_1h.csv does not exist" in failed.error
    deadline = time.monotonic() + 60
    while (long.snapshot() or {}).get("step_number") != 7 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert long.pid is not None and long.status() == "running"
    os.kill(long.pid, signal.SIGKILL)
    assert long.wait(10)
    crashed = long.outcome()
    assert crashed is not None and crashed.status == "failed"
    assert "killed by SIGKILL" in (crashed.error or "")
    assert (pool.running, pool.pending) == (0, 0)


def test_a_bad_strategy_is_refused_before_any_worker_starts(sample_data_dir: Path) -> None:
    # The spec is checked once, where it is built: nothing bad ever reaches a worker.
    with pytest.raises(StrategyConfigError, match=r"training\.epochs"):
        request(sample_data_dir, overrides={"training.epochs": 0})
