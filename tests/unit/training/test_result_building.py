"""The result contract of step 11: keys, finite metrics, no times in metrics, verdict, warnings."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from ktrdr.config import load_strategy_config
from ktrdr.errors import (
    TrainingError,
)
from ktrdr.training.data_split import SPLITS, split_warnings
from ktrdr.training.executor import TrainingExecutor
from ktrdr.training.result_building import validate_training_result
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 1})


def test_result_validation(sample_data_dir: Path) -> None:
    executor = TrainingExecutor({"strategy_config": REAL, "data_dir": sample_data_dir})
    result = executor.execute(["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", save=False)
    validate_training_result(result)
    # A verdict in words, and the split warnings raised before training (a quarter of hourly
    # bars makes a test split of a few hundred rows, some classes scarce).
    assert result["verdict"] and "better baseline" in result["verdict"][0]
    assert result["metadata"]["warnings"] == list(
        split_warnings(
            {n: {"all": result["metadata"]["splits"][n]["class_counts"]} for n in SPLITS}
        )
    )
    broken = copy.deepcopy(result)
    broken["test_metrics"]["duration_seconds"] = 1.0
    with pytest.raises(TrainingError, match="time-like entry 'duration_seconds'"):
        validate_training_result(broken)
    broken = copy.deepcopy(result)
    del broken["metadata"]["device"]
    with pytest.raises(TrainingError, match="metadata lacks device"):
        validate_training_result(broken)
    broken = copy.deepcopy(result)
    broken["test_metrics"]["accuracy"] = 1.5
    with pytest.raises(TrainingError, match="accuracy"):
        validate_training_result(broken)
    broken = copy.deepcopy(result)
    broken["training_metrics"]["val_loss"][0] = float("nan")
    with pytest.raises(
        TrainingError, match=r"non-finite number at training_metrics\.val_loss\[0\]"
    ):
        validate_training_result(broken)
