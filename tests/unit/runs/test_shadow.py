"""Shadow runs on a real backend (threads of this process): a match, a mismatch made on
purpose, a shadow that fails, and runs that are not sampled."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ktrdr.runs.gates import FAIL, evaluate_gates, load_thresholds
from ktrdr.runs.in_process import InProcessBackend
from ktrdr.runs.ledger import RunLedger, with_chosen_path
from ktrdr.runs.shadow import start_shadow
from ktrdr.training.executor import TrainingExecutor
from ktrdr.training.rollout import RolloutSettings
from ktrdr.training.run_spec import EXECUTION_PATH, REFERENCE_PATH, RunSpec
from tests.training_helpers import short_spec

pytestmark = pytest.mark.unit


@pytest.fixture
def backend() -> Any:
    running = InProcessBackend()
    yield running
    running.shutdown()


def _primary(data_dir: Path, tmp_path: Path, backend: InProcessBackend) -> tuple[RunSpec, dict]:
    spec = with_chosen_path(
        short_spec(data_dir, models_dir=str(tmp_path / "models"), run_id="primary0001"),
        RolloutSettings(percent=0),
    )
    assert spec.execution_path == REFERENCE_PATH
    handle = backend.start(spec)
    assert handle.wait(120)
    outcome = handle.outcome()
    assert outcome is not None and outcome.status == "completed", outcome
    assert outcome.result is not None
    return spec, outcome.result


def _shadow_row(backend: InProcessBackend, spec: RunSpec, result: dict, tmp_path: Path) -> dict:
    ledger = RunLedger(f"sqlite:///{tmp_path / 'ktrdr.db'}")
    handle = start_shadow(backend, spec, result, percent=100, ledger=ledger)
    assert handle is not None
    assert handle.wait(120)
    (row,) = ledger.rows()
    ledger.close()
    return row


def test_a_shadow_on_the_other_path_matches_its_primary(
    sample_data_dir: Path, tmp_path: Path, backend: InProcessBackend
) -> None:
    spec, result = _primary(sample_data_dir, tmp_path, backend)
    row = _shadow_row(backend, spec, result, tmp_path)
    assert row["shadow_of"] == "primary0001" and row["run_id"] != "primary0001"
    assert row["execution_path"] == EXECUTION_PATH and row["status"] == "completed"
    assert (row["shadow"], row["shadow_difference"]) == ("match", None)
    assert row["weights_digest"] == result["metadata"]["weights_digest"]
    # Saved nowhere: the primary's version is the only one.
    assert [p.name for p in (tmp_path / "models" / spec.name).glob("*_v*")] == ["EURUSD_1h_v1"]


def test_paths_made_to_differ_are_a_mismatch_naming_the_field(
    sample_data_dir: Path,
    tmp_path: Path,
    backend: InProcessBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, result = _primary(sample_data_dir, tmp_path, backend)
    original = TrainingExecutor.run

    def another_seed(self: TrainingExecutor, run: RunSpec) -> Any:
        strategy = copy.deepcopy(run.strategy)
        strategy["training"]["seed"] += 1
        return original(self, replace(run, strategy=strategy))

    monkeypatch.setattr(TrainingExecutor, "run", another_seed)
    row = _shadow_row(backend, spec, result, tmp_path)
    assert row["shadow"] == "mismatch"
    assert row["shadow_difference"].startswith("metadata.weights_digest: ")
    report = evaluate_gates([row], "canary", load_thresholds())
    (shadow_gate,) = [g for g in report.gates if g.name.startswith("shadow")]
    assert (shadow_gate.verdict, shadow_gate.figure, report.verdict) == (FAIL, 1.0, FAIL)
    assert "metadata.weights_digest" in shadow_gate.detail


def test_a_failing_shadow_is_its_row_and_never_the_primary_s(
    sample_data_dir: Path,
    tmp_path: Path,
    backend: InProcessBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, result = _primary(sample_data_dir, tmp_path, backend)

    def broken(self: TrainingExecutor, run: RunSpec) -> Any:
        raise RuntimeError("injected")

    monkeypatch.setattr(TrainingExecutor, "run", broken)
    row = _shadow_row(backend, spec, result, tmp_path)
    assert (row["status"], row["shadow"], row["shadow_of"]) == ("failed", "failed", "primary0001")


def test_a_shadow_that_cannot_start_is_recorded_failed(tmp_path: Path) -> None:
    class Refusing:
        placement = ("local", "pool")

        def start(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the pool is closed")

        def shutdown(self, grace_s: float = 0) -> None:
            pass

    spec = with_chosen_path(short_spec(None, run_id="primary0002"), RolloutSettings())
    ledger = RunLedger(f"sqlite:///{tmp_path / 'ktrdr.db'}")
    assert start_shadow(Refusing(), spec, {}, percent=100, ledger=ledger) is None  # type: ignore[arg-type]
    (row,) = ledger.rows()
    assert (row["status"], row["shadow"], row["error_type"]) == ("failed", "failed", "RuntimeError")


def test_runs_outside_the_sample_or_under_the_flag_get_no_shadow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Unused:
        placement = ("local", "pool")

        def start(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no shadow should start")

    spec = with_chosen_path(short_spec(None, run_id="primary0003"), RolloutSettings())
    assert start_shadow(Unused(), spec, {}, percent=0, ledger=None) is None  # type: ignore[arg-type]
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", "false")
    assert start_shadow(Unused(), spec, {}, percent=100, ledger=None) is None  # type: ignore[arg-type]
