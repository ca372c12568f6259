"""The one verdict object: both baselines, the p-value, collapse and near collapse, in words;
rebuilt for versions saved before it was kept, and never built from a damaged document."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ktrdr.training.evaluation import baseline_comparison, classification_metrics
from ktrdr.training.verdict import NEAR_COLLAPSE_SHARE, build_verdict, stored_verdict

pytestmark = pytest.mark.unit


def _metrics(labels: np.ndarray, predicted: np.ndarray, train_class: int) -> dict:
    train_baseline = float((labels == train_class).mean())
    metrics = {
        **classification_metrics(labels, predicted),
        **baseline_comparison(labels, predicted, train_baseline),
    }
    metrics.update(
        baseline_accuracy=train_baseline, baseline_class=["BUY", "HOLD", "SELL"][train_class]
    )
    return metrics


def test_a_model_below_the_test_majority_is_judged_against_it_with_both_baselines() -> None:
    # As seen on a broker's 2024 EURUSD: 47.4% against a training majority of 41.7%, where
    # always answering the test split's majority scores 50.9% (p = 0.985).
    rng = np.random.default_rng(7)
    labels = rng.choice(3, size=1000, p=[0.417, 0.509, 0.074])
    predicted = np.where(rng.random(1000) < 0.2, labels, rng.choice(3, size=1000))
    metrics = _metrics(labels, predicted, train_class=0)
    verdict = build_verdict(metrics)
    assert verdict is not None
    assert verdict["train_majority_baseline"] == pytest.approx((labels == 0).mean())
    assert verdict["test_majority_baseline"] == pytest.approx((labels == 1).mean())
    assert verdict["better_baseline"] == verdict["test_majority_baseline"]
    assert verdict["p_value"] == metrics["p_value"]
    assert verdict["beats_baseline"] is metrics["beats_baseline"] is False
    assert verdict["label"] in ("does not beat them", "above, not significant")
    [sentence] = verdict["sentences"]
    assert "HOLD (the test split's majority)" in sentence
    assert "the training split's majority BUY scores" in sentence and "p = " in sentence
    json.dumps(verdict, allow_nan=False)  # stored in metrics.json: strict JSON


def test_155_of_156_in_one_class_is_near_collapse() -> None:
    labels = np.array([1] * 90 + [0] * 33 + [2] * 33)
    predicted = np.ones(156, dtype=np.int64)
    predicted[0] = 0
    verdict = build_verdict(_metrics(labels, predicted, train_class=1))
    assert verdict is not None
    assert not verdict["collapsed"] and verdict["near_collapse"]
    assert verdict["dominant_class"] == "HOLD"
    assert verdict["dominant_share"] == pytest.approx(155 / 156)
    assert verdict["dominant_share"] >= NEAR_COLLAPSE_SHARE
    assert verdict["predicted_counts"] == {"BUY": 1, "HOLD": 155, "SELL": 0}
    assert verdict["label"] == "near collapse: 99% HOLD"
    assert "It predicts HOLD for 155 of 156 test rows (99%)" in verdict["sentences"][1]
    collapsed = build_verdict(_metrics(labels, np.ones(156, dtype=np.int64), train_class=1))
    assert collapsed is not None and collapsed["collapsed"] and not collapsed["near_collapse"]
    assert collapsed["label"] == "collapsed: HOLD only"
    # Below the share: neither.
    spread = predicted.copy()
    spread[:10] = 2
    assert not build_verdict(_metrics(labels, spread, train_class=1))["near_collapse"]  # type: ignore[index]


def test_a_version_saved_before_the_verdict_was_kept_gets_it_rebuilt() -> None:
    labels = np.array([1] * 60 + [0] * 20 + [2] * 20)
    metrics = _metrics(labels, labels.copy(), train_class=1)
    assert "verdict" not in metrics
    rebuilt = stored_verdict(metrics)
    assert rebuilt == build_verdict(metrics) and rebuilt is not None
    assert rebuilt["beats_baseline"] and rebuilt["label"] == "beats the baselines"
    kept = {**metrics, "verdict": rebuilt}
    assert stored_verdict(json.loads(json.dumps(kept))) == rebuilt


@pytest.mark.parametrize(
    "damaged",
    [
        None,
        "text",
        {},
        {"accuracy": "0.5", "baseline_accuracy": 0.4, "test_majority_baseline_accuracy": 0.4},
        {"accuracy": 0.5, "baseline_accuracy": True, "test_majority_baseline_accuracy": 0.4},
        {
            "accuracy": float("nan"),
            "baseline_accuracy": 0.4,
            "test_majority_baseline_accuracy": 0.4,
            "p_value": 0.5,
        },
    ],
)
def test_damaged_metrics_give_no_verdict_rather_than_a_wrong_one(damaged: object) -> None:
    assert stored_verdict(damaged) is None


def test_a_damaged_stored_verdict_is_rebuilt_from_the_metrics() -> None:
    labels = np.array([1] * 60 + [0] * 20 + [2] * 20)
    metrics = _metrics(labels, labels.copy(), train_class=1)
    metrics["verdict"] = {"label": 3, "sentences": "all good"}
    assert stored_verdict(metrics) == build_verdict(metrics)
    matrix = metrics["confusion_matrix"]
    metrics["confusion_matrix"] = [[-1] * 3] * 3  # counts cannot be negative
    rebuilt = build_verdict(metrics)
    assert rebuilt is not None and rebuilt["predicted_counts"] is None
    metrics["confusion_matrix"] = matrix
