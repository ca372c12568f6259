from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ktrdr.errors import DataError
from ktrdr.training import feature_importance as feature_importance_module
from ktrdr.training.evaluation import (
    baseline_comparison,
    binomial_tail,
    classification_metrics,
    evaluate_model,
)
from ktrdr.training.feature_importance import calculate_feature_importance
from ktrdr.training.verdict import build_verdict

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
    with pytest.raises(DataError, match="0 feature rows and 0 labels"):
        evaluate_model(Fixed(), x[:0], y[:0], "cpu")


def test_permutation_importance_finds_the_feature_the_model_uses() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = np.column_stack([y, rng.normal(size=300), rng.normal(size=300)]).astype(np.float32)
    names = ["signal", "noise_a", "noise_b"]
    importance, spread = calculate_feature_importance(
        Fixed(), x, y, names, seed=5, repeats=4, device="cpu"
    )
    assert importance["signal"] > 0.5
    assert importance["noise_a"] == 0.0 and importance["noise_b"] == 0.0
    assert spread["noise_a"] == 0.0 and spread["signal"] > 0.0
    again = calculate_feature_importance(Fixed(), x, y, names, seed=5, repeats=4, device="cpu")
    assert again == (importance, spread)
    assert (x[:, 0] == y).all()  # the caller's array is not shuffled
    with pytest.raises(DataError, match=r"\(300, 3\) features for 2 names"):
        calculate_feature_importance(Fixed(), x, y, names[:2], seed=5, repeats=4, device="cpu")


def test_permutation_importance_is_the_same_however_repeats_are_stacked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 500)
    x = np.column_stack([y + rng.normal(scale=0.6, size=500), rng.normal(size=500)]).astype(
        np.float32
    )
    stacked = calculate_feature_importance(
        Fixed(), x, y, ["signal", "noise"], seed=3, repeats=5, device="cpu"
    )
    # A prediction chunk of 1,200 rows fits two repeats per pass; of 100 rows, one.
    for chunk in (1_200, 100):
        monkeypatch.setattr(feature_importance_module, "PREDICT_CHUNK", chunk)
        again = calculate_feature_importance(
            Fixed(), x, y, ["signal", "noise"], seed=3, repeats=5, device="cpu"
        )
        assert again == stacked
    assert stacked.mean["signal"] > 0.1


def test_the_spread_of_importance_is_the_sd_of_each_repeat_s_drop() -> None:
    # Oracle: the same permutations drawn by hand (one rng, feature order, repeat order), each
    # repeat's accuracy recomputed from the class in feature 0, with no model at all.
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 400)
    x = np.column_stack([np.where(rng.random(400) < 0.7, y, 1), rng.normal(size=400)])
    x = x.astype(np.float32)
    result = calculate_feature_importance(
        Fixed(), x, y, ["signal", "noise"], seed=9, repeats=6, device="cpu"
    )
    base = (x[:, 0] == y).mean()
    draws = np.random.default_rng(9)
    drops = [base - (x[draws.permutation(400), 0] == y).mean() for _ in range(6)]
    assert result.mean["signal"] == pytest.approx(np.mean(drops))
    assert result.spread["signal"] == pytest.approx(np.std(drops, ddof=1))
    assert result.spread["signal"] > 0.0 and result.spread["noise"] == 0.0
    single = calculate_feature_importance(
        Fixed(), x, y, ["signal", "noise"], seed=9, repeats=1, device="cpu"
    )
    assert single.spread == {"signal": 0.0, "noise": 0.0}


def test_a_model_that_beats_the_training_majority_can_lose_to_the_test_majority() -> None:
    # As seen on real 2024 bars: 0.314 against a 0.245 training-majority baseline, while always
    # answering SELL (the test split's majority) scores 0.443.
    labels = np.array([0] * 245 + [1] * 312 + [2] * 443)
    rng = np.random.default_rng(0)
    predicted = labels.copy()
    wrong = rng.choice(len(labels), size=686, replace=False)
    predicted[wrong] = (labels[wrong] + 1) % 3
    result = baseline_comparison(labels, predicted, train_baseline=0.245)
    assert result["test_majority_class"] == "SELL"
    assert result["test_majority_baseline_accuracy"] == pytest.approx(0.443)
    assert result["better_baseline_accuracy"] == pytest.approx(0.443)
    assert not result["beats_baseline"] and result["p_value"] > 0.5
    metrics = {**classification_metrics(labels, predicted), **result}
    metrics.update(baseline_accuracy=0.245, baseline_class="BUY")
    [line] = build_verdict(metrics)["sentences"]  # type: ignore[index]
    assert (
        "does NOT beat the better baseline" in line and "SELL (the test split's majority)" in line
    )


def test_p_value_is_the_binomial_tail_and_a_constant_model_is_named() -> None:
    labels = np.array([1] * 60 + [0] * 20 + [2] * 20)
    right = labels.copy()
    result = baseline_comparison(labels, right, train_baseline=0.6)
    # 100 of 100 correct where 0.6 is expected: p = 0.6 ** 100.
    assert result["p_value"] == pytest.approx(0.6**100, rel=1e-6)
    assert result["beats_baseline"] and not result["single_class_prediction"]
    constant = np.ones_like(labels)
    collapsed = baseline_comparison(labels, constant, train_baseline=0.6)
    assert collapsed["single_class_prediction"] and collapsed["predicted_classes"] == ["HOLD"]
    metrics = {**classification_metrics(labels, constant), **collapsed}
    metrics.update(baseline_accuracy=0.6, baseline_class="HOLD")
    assert "predicts one class only (HOLD)" in build_verdict(metrics)["sentences"][1]  # type: ignore[index]


@pytest.mark.parametrize("trials", [1, 7, 100, 902, 5000, 250_000])
def test_binomial_tail_equals_scipy_stats_binomtest(trials: int) -> None:
    from scipy.stats import binomtest

    rng = np.random.default_rng(trials)
    for successes, chance in [
        (0, 0.5),
        (trials, 0.999),
        *[(int(rng.integers(0, trials + 1)), float(rng.uniform(0.01, 0.99))) for _ in range(25)],
    ]:
        expected = binomtest(successes, trials, chance, alternative="greater").pvalue
        assert binomial_tail(successes, trials, chance) == pytest.approx(expected, rel=1e-9)


def test_evaluating_a_model_does_not_import_scipy_stats() -> None:
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from ktrdr.training.evaluation import baseline_comparison\n"
        "labels = np.array([0, 1, 2, 1] * 50)\n"
        "result = baseline_comparison(labels, labels, train_baseline=0.5)\n"
        "print(result['p_value'] < 1e-9, 'scipy.stats' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["True", "False"], done.stderr


def _right_in(labels: np.ndarray, correct: int) -> np.ndarray:
    """Predictions right on the first ``correct`` rows and wrong on the rest."""
    predicted = labels.copy()
    predicted[correct:] = (labels[correct:] + 1) % 3
    return predicted


@pytest.mark.parametrize(
    ("correct", "beats", "sentence"),
    [
        (60, False, "does NOT beat the better baseline"),  # level with it
        (62, False, "but not significantly"),  # above it, p = 0.38
        (68, False, "but not significantly"),  # above it, p = 0.062
        (69, True, "The model beats the better baseline"),  # p = 0.040
    ],
)
def test_beating_the_baseline_needs_a_higher_accuracy_and_p_below_005(
    correct: int, beats: bool, sentence: str
) -> None:
    from scipy.stats import binomtest

    labels = np.array([1] * 60 + [0] * 20 + [2] * 20)
    np.random.default_rng(correct).shuffle(labels)
    predicted = _right_in(labels, correct)
    result = baseline_comparison(labels, predicted, train_baseline=0.55)
    assert result["better_baseline_accuracy"] == pytest.approx(0.6)
    # The oracle: scipy's own one-sided binomial test, against the better baseline.
    expected_p = binomtest(correct, 100, 0.6, alternative="greater").pvalue
    assert result["p_value"] == pytest.approx(expected_p, rel=1e-9)
    assert result["beats_baseline"] is beats
    assert beats == (correct / 100 > 0.6 and expected_p < 0.05)
    metrics = {**classification_metrics(labels, predicted), **result}
    metrics.update(baseline_accuracy=0.55, baseline_class="HOLD")
    assert sentence in build_verdict(metrics)["sentences"][0]  # type: ignore[index]
