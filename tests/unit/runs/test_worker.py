"""How a worker reports a run: exactly one last message, whatever happened (train_one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.runs import worker
from ktrdr.store.model_artifact import ModelArtifact
from ktrdr.training.run_spec import build_run_spec
from ktrdr.training.train_strategy import StrategyTrainer
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = STRATEGIES_DIR / "neuro_mean_reversion.yaml"


def _spec(data_dir: Path, **fields: Any) -> Any:
    return build_run_spec(
        REAL,
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-02-28",
        overrides={"training.epochs": 1},
        threads=1,
        data_dir=data_dir,
        **fields,
    )


def test_an_unsaved_run_sends_its_artifact_and_a_saved_one_does_not(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    kind, result, data = worker.train_one(
        _spec(sample_data_dir, save=False), None, GenericProgressManager()
    )
    assert kind == "completed" and result["model_id"] is None
    assert ModelArtifact.from_bytes(data).manifest["feature_names"] == result["feature_names"]
    kind, result, data = worker.train_one(
        _spec(sample_data_dir, models_dir=tmp_path), None, GenericProgressManager()
    )
    assert kind == "completed" and data is None
    assert Path(result["model_path"]).is_relative_to(tmp_path)


def test_cancelled_failed_and_unexpected_endings_are_told_apart(
    sample_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = ThreadingCancellationToken()
    token.cancel("stop now")
    assert worker.train_one(_spec(sample_data_dir), token, GenericProgressManager()) == (
        "cancelled",
        "stop now during step 1",
    )
    kind, error_type, message = worker.train_one(
        _spec(tmp_path / "empty"), None, GenericProgressManager()
    )
    assert (kind, error_type) == ("failed", "DataError") and "EURUSD_1h.csv" in message

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(StrategyTrainer, "train", explode)
    kind, error_type, message = worker.train_one(
        _spec(sample_data_dir), None, GenericProgressManager()
    )
    assert (kind, error_type) == ("failed", "ZeroDivisionError")
    assert "unexpected error" in message and "boom" in message
