from __future__ import annotations

import copy
from typing import Any

import pytest

from ktrdr.training.path_comparison import comparable, first_difference

pytestmark = pytest.mark.unit

RESULT: dict[str, Any] = {
    "training_metrics": {"final_loss": 0.7, "epochs": 3},
    "test_metrics": {"accuracy": 0.52, "verdict": {"better_baseline": 0.5}},
    "feature_names": ["rsi_oversold", "rsi_overbought"],
    "feature_importance": {"rsi_oversold": 0.01, "rsi_overbought": 0.0},
    "feature_importance_spread": {"rsi_oversold": 0.002, "rsi_overbought": 0.0},
    "metadata": {
        "weights_digest": "ab" * 32,
        "per_symbol_test_metrics": {"EURUSD": {"accuracy": 0.52}},
        "execution_path": "training_executor",
        "training_seconds": 1.5,
        "run_id": "one",
    },
    "model_path": "/models/a",
}


def test_the_same_run_on_the_other_path_agrees_whatever_its_timings_and_names() -> None:
    other = copy.deepcopy(RESULT)
    other["metadata"].update(execution_path="strategy_trainer", training_seconds=9.0, run_id="two")
    other["model_path"] = None
    assert first_difference(RESULT, other) is None
    assert "test_metrics.verdict.better_baseline" in comparable(RESULT)


def test_the_weights_are_named_first_then_fields_in_order() -> None:
    other = copy.deepcopy(RESULT)
    other["test_metrics"]["accuracy"] = 0.51
    assert first_difference(RESULT, other) == "test_metrics.accuracy: 0.52 != 0.51"
    other["metadata"]["weights_digest"] = "cd" * 32
    assert first_difference(RESULT, other).startswith("metadata.weights_digest: ")  # type: ignore[union-attr]


def test_a_field_only_one_result_has_is_a_difference() -> None:
    other = copy.deepcopy(RESULT)
    del other["feature_importance"]["rsi_overbought"]
    assert first_difference(RESULT, other) == (
        "feature_importance.rsi_overbought: 0.0 != (missing)"
    )
    assert first_difference(other, RESULT) == (
        "feature_importance.rsi_overbought: (missing) != 0.0"
    )


def test_nan_equals_nan_and_an_int_is_not_a_float() -> None:
    one, other = copy.deepcopy(RESULT), copy.deepcopy(RESULT)
    one["test_metrics"]["accuracy"] = other["test_metrics"]["accuracy"] = float("nan")
    assert first_difference(one, other) is None
    other["training_metrics"]["epochs"] = 3.0
    assert first_difference(one, other) == "training_metrics.epochs: 3 != 3.0"
