"""How a worker reports a run: exactly one last message, whatever happened (train_one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.runs import RunOutcome, worker
from ktrdr.store.received import receive_artifact
from ktrdr.training.train_strategy import StrategyTrainer
from tests.training_helpers import short_spec

pytestmark = pytest.mark.unit


def _spec(data_dir: Path, **fields: Any) -> Any:
    return short_spec(data_dir, **fields)


def test_an_unsaved_run_sends_its_sealed_artifact_and_a_saved_one_does_not(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    outcome = worker.train_one(_spec(sample_data_dir, save=False), None, GenericProgressManager())
    assert outcome.status == "completed" and outcome.result is not None
    assert outcome.result["model_id"] is None and outcome.artifact is not None
    artifact = receive_artifact(outcome.artifact)  # the hash was taken from the same bytes
    assert artifact.manifest["feature_names"] == outcome.result["feature_names"]
    outcome = worker.train_one(
        _spec(sample_data_dir, models_dir=tmp_path), None, GenericProgressManager()
    )
    assert outcome.status == "completed" and outcome.artifact is None
    assert outcome.result is not None
    assert Path(outcome.result["model_path"]).is_relative_to(tmp_path)


def test_cancelled_failed_and_unexpected_endings_are_told_apart(
    sample_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = ThreadingCancellationToken()
    token.cancel("stop now")
    assert worker.train_one(_spec(sample_data_dir), token, GenericProgressManager()) == (
        RunOutcome("cancelled", error="stop now during step 1")
    )
    failed = worker.train_one(_spec(tmp_path / "empty"), None, GenericProgressManager())
    assert (failed.status, failed.error_type) == ("failed", "DataError")
    assert "EURUSD_1h.csv" in (failed.error or "")

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(StrategyTrainer, "train", explode)
    crashed = worker.train_one(_spec(sample_data_dir), None, GenericProgressManager())
    assert (crashed.status, crashed.error_type) == ("failed", "ZeroDivisionError")
    assert "unexpected error" in (crashed.error or "") and "boom" in (crashed.error or "")


def test_the_watcher_reports_progress_and_cancels_when_told_or_unheard(
    sample_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "PROGRESS_INTERVAL_S", 0.01)
    seen: list[dict[str, Any]] = []
    outcome = worker.train_and_report(_spec(sample_data_dir, save=False), seen.append)
    # The reporter here returns None (falsy) for "nobody listens": that cancels the run.
    assert outcome.status == "cancelled" and "stopped listening" in (outcome.error or "")
    assert seen and seen[-1]["status"] == "cancelled"

    reports: list[float] = []

    def heard(snapshot: dict[str, Any]) -> bool:
        reports.append(snapshot["percentage"])
        return True

    done = worker.train_and_report(_spec(sample_data_dir, save=False), heard)
    assert done.status == "completed" and reports[-1] == 100.0
    assert reports == sorted(reports)  # never backwards; the last one after the end
    stopped = worker.train_and_report(
        _spec(sample_data_dir, save=False), heard, lambda: "the sweep was cancelled"
    )
    assert stopped.status == "cancelled"
    assert (stopped.error or "").startswith("the sweep was cancelled during")
