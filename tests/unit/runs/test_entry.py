"""ktrdr.train_strategy: execution modes and strategies given by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr import train_strategy
from ktrdr.config import load_strategy_config
from ktrdr.errors import (
    ExecutionModeError,
)
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 1})


def test_execution_modes() -> None:
    # A host that does not answer falls back to a local run (tests/e2e/test_host_mode.py), unless
    # a GPU is required.
    with pytest.raises(ExecutionModeError, match=r"host service at http://127\.0\.0\.1:9 does"):
        train_strategy(
            ["EURUSD"],
            ["1h"],
            "2017-01-01",
            "2017-03-31",
            REAL,
            execution_mode="host",
            host_url="http://127.0.0.1:9",
            require_gpu=True,
        )
    with pytest.raises(ExecutionModeError, match="'cloud' is not valid"):
        train_strategy(["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", REAL, execution_mode="cloud")


def test_strategy_by_name_resolves_in_the_strategies_dir(
    sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTRDR_STRATEGIES_DIR", str(STRATEGIES_DIR))
    result = train_strategy(
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-03-31",
        "neuro_mean_reversion",
        data_dir=sample_data_dir,
        models_dir=models_dir,
        save=False,
    )
    assert result["config"]["strategy_config"]["name"] == "neuro_mean_reversion"


def test_overrides_from_python_train_and_are_recorded_in_the_version(
    sample_data_dir: Path, models_dir: Path
) -> None:
    # ktrdr.train_strategy took no overrides=, so a sweep from Python edited the strategy dict,
    # and models list could not say what had changed.
    import json

    result = train_strategy(
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-03-31",
        REAL,
        data_dir=sample_data_dir,
        models_dir=models_dir,
        overrides={"training.epochs": 2, "training.early_stopping.patience": 2},
    )
    assert len(result["training_metrics"]["train_loss"]) == 2
    manifest = json.loads((Path(result["model_path"]) / "manifest.json").read_text())
    assert manifest["overrides"] == {"training.epochs": 2, "training.early_stopping.patience": 2}
