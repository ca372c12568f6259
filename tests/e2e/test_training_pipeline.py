"""End-to-end guard: the real strategy, trained through ``ktrdr.train_strategy``.

See docs/architecture.md: the executor and the facade.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ktrdr import load_strategy_config, train_strategy
from ktrdr.data.store import load_bars
from ktrdr.data.timeframes import base_timeframe
from tests.conftest import REPO_ROOT, STRATEGIES_DIR

pytestmark = [pytest.mark.e2e]

REAL_STRATEGY = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
START, END = "2017-01-01", "2017-03-31"
FAST = {"training.epochs": 8, "training.batch_size": 64}  # everything else from the real file


def test_real_strategy_validates_and_its_sample_bars_load(e2e_env: dict[str, Path]) -> None:
    config = load_strategy_config(REAL_STRATEGY, overrides=FAST)
    assert config["name"] == "neuro_mean_reversion" and config["training"]["epochs"] == 8
    timeframe = base_timeframe(config["training_data"]["timeframes"])
    for symbol in config["training_data"]["symbols"]:
        bars = load_bars(symbol, timeframe, START, END)  # from KTRDR_DATA_DIR
        assert bars.index[0].strftime("%Y-%m-%d") == "2017-01-01"
        assert bars.index[-1].strftime("%Y-%m-%d") == "2017-03-31"


_PREDICT_APRIL = """
import json, sys
from ktrdr import load_model
from ktrdr.data.store import load_bars
model = load_model(sys.argv[1])
bars = load_bars("EURUSD", "1h", "2017-04-01", "2017-04-30",
                 history_bars=model.stable_history_bars["1h"])
april = bars[bars.index >= "2017-04-01"]
predictions = model.predict(bars)
predictions = predictions[predictions.index >= "2017-04-01"]
print(json.dumps({"bars": len(april), "rows": len(predictions),
                  "same_index": bool(predictions.index.equals(april.index)),
                  "classes": sorted(set(predictions["class"].astype(str)))}))
"""


def test_full_pipeline_on_the_real_strategy(e2e_env: dict[str, Path]) -> None:
    config = load_strategy_config(REAL_STRATEGY, overrides=FAST)
    result = train_strategy(
        symbols=["EURUSD"],
        timeframes=["1h"],
        start_date=START,
        end_date=END,
        strategy_config=config,
        execution_mode="local",
    )
    assert result["success"] is True
    model_path = Path(result["model_path"])
    assert model_path.is_dir() and model_path.is_relative_to(e2e_env["models_dir"])
    assert result["model_id"] == f"neuro_mean_reversion/{model_path.name}"
    test = result["test_metrics"]
    for key in (
        "accuracy",
        "precision",
        "recall",
        "f1_score",
        "baseline_accuracy",
        "precision_weighted",
        "recall_weighted",
        "f1_score_weighted",
    ):
        assert math.isfinite(test[key]) and 0.0 <= test[key] <= 1.0, key
    assert math.isfinite(test["loss"])
    metadata = result["metadata"]
    assert sum(map(sum, test["confusion_matrix"])) == metadata["test_samples"]
    assert (
        metadata["training_samples"] + metadata["validation_samples"] + metadata["test_samples"]
        == metadata["total_samples"]
    )
    assert metadata["start_date"] >= "2017-01-01" and metadata["end_date"] < "2017-04-01"
    assert result["training_metrics"]["epochs"] <= 8
    assert len(result["feature_importance"]) == len(result["feature_names"]) == 18
    json.dumps(result)
    # Reload in a fresh process and predict April 2017: a prediction for every April bar.
    child = subprocess.run(
        [sys.executable, "-c", _PREDICT_APRIL, str(model_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    report = json.loads(child.stdout)
    assert report["rows"] == report["bars"] > 400 and report["same_index"]
    assert set(report["classes"]) <= {"BUY", "HOLD", "SELL"}
