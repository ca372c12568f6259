"""The services' Prometheus metrics, fed by every followed run once installed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client import REGISTRY

from ktrdr.runs import ledger, metrics
from ktrdr.runs.ledger import RunRecorder, with_chosen_path
from tests.training_helpers import short_spec

pytestmark = pytest.mark.unit


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_followed_run_is_counted_timed_and_leaves_the_active_gauge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger, "_observers", [])
    metrics.install()
    metrics.install()  # once is enough: a second install changes nothing
    assert len(ledger._observers) == 1
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", "true")
    spec = with_chosen_path(short_spec(None, run_id="m1"))
    path = {"path": "training_executor"}
    runs = {**path, "mode": "local", "status": "cancelled"}
    before = _value("ktrdr_training_runs_total", **runs)
    timed = _value("ktrdr_training_duration_seconds_count", **path)
    cancels = _value("ktrdr_training_cancel_latency_seconds_count", **path)
    active = _value("ktrdr_trainings_active", **path)
    recorder = RunRecorder(None, spec, mode="local", backend="pool")
    assert _value("ktrdr_trainings_active", **path) == active + 1
    recorder.progress({"step_starts": {"1": 1.0, "2": 1.5}})
    recorder.progress({"step_starts": {"1": 1.0, "2": 1.5, "7": 2.0}})
    recorder.cancel_requested()
    recorder.finish("cancelled", error="stop")
    assert _value("ktrdr_training_runs_total", **runs) == before + 1
    assert _value("ktrdr_training_duration_seconds_count", **path) == timed + 1
    assert _value("ktrdr_training_cancel_latency_seconds_count", **path) == cancels + 1
    assert _value("ktrdr_training_step_duration_seconds_count", **path, step="1") >= 1
    assert _value("ktrdr_training_progress_interval_seconds_count", **path) >= 1
    assert _value("ktrdr_trainings_active", **path) == active

    text, kind = metrics.exposition()
    assert kind.startswith("text/plain")
    assert b"ktrdr_build_info{" in text
    assert b"m1" not in text  # no run id in any label


def test_without_install_a_run_feeds_no_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "_observers", [])
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", "false")
    labels = {"path": "strategy_trainer", "mode": "local", "status": "completed"}
    before = _value("ktrdr_training_runs_total", **labels)
    RunRecorder(None, with_chosen_path(short_spec(None)), mode="local", backend="x").finish(
        "completed"
    )
    assert _value("ktrdr_training_runs_total", **labels) == before


def test_every_path_s_series_exist_from_the_start_at_zero() -> None:
    # A quick run may end before a second progress report, so no interval is ever observed;
    # its series must be there all the same, for promtool, dashboards and the alerts' ratios.
    code = (
        "from ktrdr.runs import metrics\n"
        "metrics.install()\n"
        "print(metrics.exposition()[0].decode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    for path in ("training_executor", "strategy_trainer"):
        for series in (
            "ktrdr_training_duration_seconds_count",
            "ktrdr_training_cancel_latency_seconds_count",
            "ktrdr_training_progress_interval_seconds_count",
        ):
            assert f'{series}{{path="{path}"}} 0.0' in done.stdout, (series, path)
        assert f'ktrdr_trainings_active{{path="{path}"}} 0.0' in done.stdout
