from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ktrdr.errors import DataError
from ktrdr.training.evaluation import classification_metrics, evaluate_model
from ktrdr.training.feature_importance import calculate_feature_importance

pytestmark = pytest.mark.unit


class Fixed(nn.Module):
    """Predicts the class given in feature 0 (0, 1 or 2); ignores every other feature."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x[:, 0].long().clamp(0, 2), 3).float() * 10


def test_metrics_by_hand() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 2, 2])
    m = classification_metrics(labels, predicted)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    # precision: BUY 1/1, HOLD 2/3, SELL 1/2; recall: BUY 1/2, HOLD 2/3, SELL 1/1
    assert m["precision"] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    f1 = [2 * 1 * 0.5 / 1.5, 2 / 3, 2 * 0.5 / 1.5]
    assert m["f1_score"] == pytest.approx(sum(f1) / 3)
    assert m["f1_score_weighted"] == pytest.approx((2 * f1[0] + 3 * f1[1] + f1[2]) / 6)
    assert m["support"] == {"BUY": 2, "HOLD": 3, "SELL": 1}


def test_never_predicted_class_has_zero_precision_not_nan() -> None:
    m = classification_metrics(np.array([0, 1, 2]), np.array([1, 1, 1]))
    assert m["per_class"]["BUY"]["precision"] == 0.0
    assert np.isfinite(m["f1_score"])


def test_evaluate_model_reports_the_training_majority_baseline() -> None:
    x = np.array([[0.0], [1.0], [1.0], [2.0]], dtype=np.float32)
    y = np.array([0, 1, 2, 2])
    metrics = evaluate_model(Fixed(), x, y, "cpu", majority_class=1)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["baseline_accuracy"] == pytest.approx(0.25)
    assert metrics["baseline_class"] == "HOLD" and metrics["baseline_source"] == "train"
    assert sum(map(sum, metrics["confusion_matrix"])) == 4
    assert np.isfinite(metrics["loss"])
    assert evaluate_model(Fixed(), x, y, "cpu")["baseline_source"] == "test"
    with pytest.raises(DataError):
        evaluate_model(Fixed(), x[:0], y[:0], "cpu")


def test_permutation_importance_finds_the_feature_the_model_uses() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = np.column_stack([y, rng.normal(size=300), rng.normal(size=300)]).astype(np.float32)
    names = ["signal", "noise_a", "noise_b"]
    importance = calculate_feature_importance(Fixed(), x, y, names, seed=5, repeats=4, device="cpu")
    assert importance["signal"] > 0.5
    assert importance["noise_a"] == 0.0 and importance["noise_b"] == 0.0
    again = calculate_feature_importance(Fixed(), x, y, names, seed=5, repeats=4, device="cpu")
    assert again == importance
    assert (x[:, 0] == y).all()  # the caller's array is not shuffled
    with pytest.raises(DataError):
        calculate_feature_importance(Fixed(), x, y, names[:2], seed=5, repeats=4, device="cpu")
