"""The verdict on a model's test metrics: both baselines, the p-value, collapse, in plain words.

One object, built once when the model is evaluated (``evaluate_model``), stored in
``metrics.json`` under ``test_metrics.verdict`` and shown by every command and route that shows
an accuracy. Pure and free of torch, so listings import it cheaply; ``stored_verdict`` rebuilds
it for versions saved before it was kept, and never trusts a stored document's types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ktrdr.neural.classes import CLASS_NAMES

# A model beats a baseline with a higher accuracy and a one-sided p-value below this.
SIGNIFICANCE = 0.05
# At or above this share of its test predictions in one class, a model is close to a constant.
NEAR_COLLAPSE_SHARE = 0.95


def build_verdict(test_metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """The verdict of ``test_metrics`` (``evaluate_model``'s keys), or None when they lack the
    accuracy, the two baselines or the p-value (a damaged or foreign ``metrics.json``).

    Keys: ``accuracy``; ``train_majority_baseline`` and ``train_majority_class`` (always
    answering the training split's majority); ``test_majority_baseline`` and
    ``test_majority_class`` (the test split's own majority, an oracle); ``better_baseline``;
    ``p_value``; ``beats_baseline``; ``predicted_counts`` (test predictions per class, when the
    confusion matrix is there); ``collapsed`` (one class only), ``near_collapse`` (at least
    ``NEAR_COLLAPSE_SHARE`` in one class), ``dominant_class`` and ``dominant_share``;
    ``label`` (a few words for tables) and ``sentences`` (the verdict in plain words).
    """
    accuracy = _number(test_metrics.get("accuracy"))
    train = _number(test_metrics.get("baseline_accuracy"))
    test = _number(test_metrics.get("test_majority_baseline_accuracy"))
    p_value = _number(test_metrics.get("p_value"))
    if accuracy is None or train is None or test is None or p_value is None:
        return None
    better = max(train, test)
    counts = _predicted_counts(test_metrics)
    dominant: str | None = None
    share: float | None = None
    if counts is not None and sum(counts.values()) > 0:
        total = sum(counts.values())
        dominant = max(CLASS_NAMES, key=lambda name: counts[name])
        share = counts[dominant] / total
        collapsed = counts[dominant] == total
    else:
        classes = test_metrics.get("predicted_classes")
        collapsed = isinstance(classes, list) and len(classes) == 1
        if collapsed and isinstance(classes, list):
            dominant, share = str(classes[0])[:20], 1.0
    near = not collapsed and share is not None and share >= NEAR_COLLAPSE_SHARE
    beats = accuracy > better and p_value < SIGNIFICANCE
    verdict: dict[str, Any] = {
        "accuracy": accuracy,
        "train_majority_baseline": train,
        "train_majority_class": _text(test_metrics.get("baseline_class")),
        "test_majority_baseline": test,
        "test_majority_class": _text(test_metrics.get("test_majority_class")),
        "better_baseline": better,
        "p_value": p_value,
        "significance": SIGNIFICANCE,
        "beats_baseline": beats,
        "predicted_counts": counts,
        "collapsed": collapsed,
        "near_collapse": near,
        "dominant_class": dominant,
        "dominant_share": share,
    }
    verdict["label"] = _label(verdict)
    verdict["sentences"] = _sentences(verdict, counts)
    return verdict


def stored_verdict(test_metrics: Any) -> dict[str, Any] | None:
    """The verdict a version's test metrics hold, or the one rebuilt from them (versions saved
    before it was kept); None when neither can be had."""
    if not isinstance(test_metrics, Mapping):
        return None
    stored = test_metrics.get("verdict")
    if (
        isinstance(stored, Mapping)
        and isinstance(stored.get("sentences"), list)
        and isinstance(stored.get("label"), str)
        and all(_number(stored.get(k)) is not None for k in ("accuracy", "p_value"))
    ):
        return dict(stored)
    return build_verdict(test_metrics)


def listing_fields(verdict: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a listing (``models list --json``, ``GET /strategies``) puts beside a version's
    accuracy and training-majority baseline: the other baselines, p and the verdict itself."""
    return {
        "test_majority_baseline_accuracy": None
        if verdict is None
        else verdict["test_majority_baseline"],
        "better_baseline_accuracy": None if verdict is None else verdict["better_baseline"],
        "p_value": None if verdict is None else verdict["p_value"],
        "verdict": None if verdict is None else dict(verdict),
    }


def summary_line(verdict: Mapping[str, Any]) -> str:
    """The verdict on one line, the same wherever an accuracy is shown: the accuracy, both
    baselines with their classes, the p-value and the label."""
    return (
        f"accuracy {verdict['accuracy']:.3f} · training majority "
        f"{verdict['train_majority_baseline']:.3f} ({verdict['train_majority_class'] or '?'}) · "
        f"test majority {verdict['test_majority_baseline']:.3f} "
        f"({verdict['test_majority_class'] or '?'}) · p {verdict['p_value']:.3g} · "
        f"{verdict['label']}"
    )


def _label(verdict: Mapping[str, Any]) -> str:
    if verdict["collapsed"]:
        return f"collapsed: {verdict['dominant_class'] or 'one class'} only"
    if verdict["near_collapse"]:
        return f"near collapse: {verdict['dominant_share']:.0%} {verdict['dominant_class']}"
    if verdict["beats_baseline"]:
        return "beats the baselines"
    if verdict["accuracy"] > verdict["better_baseline"]:
        return "above, not significant"
    return "does not beat them"


def _sentences(verdict: Mapping[str, Any], counts: dict[str, int] | None) -> list[str]:
    accuracy, better, p_value = verdict["accuracy"], verdict["better_baseline"], verdict["p_value"]
    train, test = verdict["train_majority_baseline"], verdict["test_majority_baseline"]
    if test > train:
        chosen = f"{verdict['test_majority_class'] or '?'} (the test split's majority)"
        other = f"the training split's majority {verdict['train_majority_class'] or '?'}"
        other_score = train
    else:
        chosen = f"{verdict['train_majority_class'] or '?'} (the training split's majority)"
        other = f"the test split's majority {verdict['test_majority_class'] or '?'}"
        other_score = test
    against = (
        f"{better:.3f} for always predicting {chosen}; {other} scores {other_score:.3f}; "
        f"p = {p_value:.3g}"
    )
    if verdict["beats_baseline"]:
        first = f"The model beats the better baseline: accuracy {accuracy:.3f} against {against}."
    elif accuracy > better:
        first = (
            f"The model's accuracy {accuracy:.3f} is above the better baseline, but not "
            f"significantly ({against}): treat it as no better."
        )
    else:
        first = (
            f"The model does NOT beat the better baseline: accuracy {accuracy:.3f} against "
            f"{against}."
        )
    sentences = [first]
    if verdict["collapsed"]:
        sentences.append(
            f"It predicts one class only ({verdict['dominant_class'] or '?'}): it has "
            "collapsed to a constant and learned nothing usable."
        )
    elif verdict["near_collapse"] and counts is not None:
        total = sum(counts.values())
        sentences.append(
            f"It predicts {verdict['dominant_class']} for {counts[verdict['dominant_class']]} of "
            f"{total} test rows ({verdict['dominant_share']:.0%}): close to a constant, so its "
            "few other answers carry little evidence."
        )
    return sentences


def _predicted_counts(test_metrics: Mapping[str, Any]) -> dict[str, int] | None:
    """Test predictions per class: the confusion matrix's column sums (rows true)."""
    matrix = test_metrics.get("confusion_matrix")
    if (
        not isinstance(matrix, list)
        or len(matrix) != len(CLASS_NAMES)
        or not all(
            isinstance(row, list)
            and len(row) == len(CLASS_NAMES)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row)
            for row in matrix
        )
    ):
        return None
    return {name: sum(row[column] for row in matrix) for column, name in enumerate(CLASS_NAMES)}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _text(value: Any) -> str | None:
    return str(value)[:20] if isinstance(value, str) else None
