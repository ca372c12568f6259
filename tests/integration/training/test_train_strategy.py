"""Oracles for what StrategyTrainer saves, computed without the orchestrators' glue.

Both execution paths share glue (the split, the scaler, the arrays), so comparing them guards
refactoring only. These tests recompute from the bar store with plain numpy and torch what a
correct run must have saved: the scaler of exactly the training rows the manifest names, and test
predictions that equal the softmax of the saved weights on the scaled test rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from ktrdr.config import load_strategy_config
from ktrdr.data.store import load_bars
from ktrdr.inference.trained_model import load_model
from ktrdr.neural.classes import CLASS_NAMES
from ktrdr.neural.mlp import build_mlp
from ktrdr.training.feature_pipeline import build_features
from ktrdr.training.label_generation import generate_labels
from ktrdr.training.train_strategy import StrategyTrainer
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.integration

START, END = "2017-01-01", "2017-06-30"


@pytest.fixture(scope="module", params=["true", "false"])
def trained(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _sample_store_template: Path,
) -> dict[str, Any]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", request.param)
    config = load_strategy_config(
        STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 3}
    )
    result = StrategyTrainer(
        tmp_path_factory.mktemp("models"), _sample_store_template
    ).train_multi_symbol_strategy(config, ["EURUSD"], ["1h"], START, END)
    monkeypatch.undo()
    return {"result": result, "config": config, "data": _sample_store_template}


def _labelled_features(trained: dict[str, Any]) -> tuple[pd.DataFrame, pd.Series, dict[str, Any]]:
    """Feature rows with a label in the run's range, recomputed from the store."""
    path = Path(trained["result"]["model_path"])
    manifest = json.loads((path / "manifest.json").read_text())
    config = trained["config"]
    bars = load_bars(
        "EURUSD",
        "1h",
        START,
        END,
        history_bars=manifest["stable_history_bars"]["1h"],
        data_dir=trained["data"],
    )
    features = build_features({"1h": bars}, config, start_date=START, end_date=END)
    labels = generate_labels(bars, config)
    rows = features.index.intersection(labels.index)
    return features.loc[rows], labels.loc[rows], manifest


def _rows_named(frame: pd.DataFrame, bounds: dict[str, Any]) -> pd.DataFrame:
    start, end = pd.Timestamp(bounds["start"]), pd.Timestamp(bounds["end"])
    return frame[(frame.index >= start) & (frame.index <= end)]


def test_the_saved_scaler_is_fit_on_exactly_the_training_rows(trained: dict[str, Any]) -> None:
    features, _, manifest = _labelled_features(trained)
    train = _rows_named(features, manifest["splits"]["train"]["EURUSD"])
    assert len(train) == manifest["splits"]["train"]["EURUSD"]["rows"]
    saved = json.loads((Path(trained["result"]["model_path"]) / "scaler.json").read_text())
    # Features are float32; the scaler's statistics are exact float64 statistics of them.
    values = train[saved["feature_names"]].to_numpy(dtype=np.float64)
    centres = values.mean(axis=0)
    scales = values.std(axis=0)
    scales[scales == 0] = 1.0
    np.testing.assert_allclose(saved["centers"], centres, rtol=0, atol=1e-12)
    np.testing.assert_allclose(saved["scales"], scales, rtol=1e-12, atol=1e-15)
    # A scaler fit on every row (validation and test included) would differ.
    everything = features[saved["feature_names"]].to_numpy(dtype=np.float64)
    assert not np.allclose(saved["centers"], everything.mean(axis=0), rtol=0, atol=1e-9)


def test_reloaded_predictions_over_the_test_split_are_the_softmax_of_the_saved_weights(
    trained: dict[str, Any],
) -> None:
    features, labels, manifest = _labelled_features(trained)
    test = _rows_named(features, manifest["splits"]["test"]["EURUSD"])
    assert len(test) == manifest["splits"]["test"]["EURUSD"]["rows"]
    path = Path(trained["result"]["model_path"])
    scaler = json.loads((path / "scaler.json").read_text())
    x = (test[manifest["feature_names"]].to_numpy() - scaler["centers"]) / scaler["scales"]
    network = build_mlp(manifest["architecture"])
    network.load_state_dict(torch.load(path / "model.pt", weights_only=True))
    network.eval()
    with torch.no_grad():
        oracle = torch.softmax(network(torch.from_numpy(x).float()).double(), dim=1).numpy()
    model = load_model(path)
    bars = load_bars(
        "EURUSD",
        "1h",
        START,
        END,
        history_bars=model.stable_history_bars["1h"],
        data_dir=trained["data"],
    )
    predicted = model.predict(bars).loc[test.index]
    np.testing.assert_allclose(
        predicted[["prob_buy", "prob_hold", "prob_sell"]].to_numpy(), oracle, rtol=0, atol=1e-6
    )
    # The reported test accuracy and confusion matrix are those of these predictions.
    truth = labels.loc[test.index].to_numpy()
    guesses = oracle.argmax(axis=1)
    metrics = trained["result"]["test_metrics"]
    assert metrics["accuracy"] == pytest.approx(float((guesses == truth).mean()), abs=1e-12)
    matrix = np.zeros((3, 3), dtype=int)
    np.add.at(matrix, (truth, guesses), 1)
    assert metrics["confusion_matrix"] == matrix.tolist()
    # The baseline is the training split's majority, never the test split's.
    train_counts = manifest["class_counts"]["train"]["EURUSD"]
    majority = max(CLASS_NAMES, key=lambda c: train_counts[c])
    assert metrics["baseline_class"] == majority
    assert metrics["baseline_accuracy"] == pytest.approx(
        float((truth == CLASS_NAMES.index(majority)).mean()), abs=1e-12
    )
