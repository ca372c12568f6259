"""The pictures saved with every model: learning curves, confusion matrix, feature importance.

Rendered with matplotlib's Agg backend (no display needed) from the metrics the run saved, so
``ktrdr models plot`` can draw them again for any version.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping
from typing import Any

from ktrdr.neural.classes import CLASS_NAMES

CURVES = "curves.png"
CONFUSION = "confusion.png"
IMPORTANCE = "importance.png"
PICTURES = (CURVES, CONFUSION, IMPORTANCE)
TOP_FEATURES = 15
_DPI = 80


def render_pictures(metrics: Mapping[str, Any]) -> dict[str, bytes]:
    """PNG bytes of each picture the metrics have the data for (name -> bytes)."""
    from matplotlib.figure import Figure  # the Agg canvas; never pyplot, never a display

    pictures: dict[str, bytes] = {}
    training = metrics.get("training_metrics") or {}
    if training.get("train_loss"):
        pictures[CURVES] = _png(_curves(Figure, training))
    test = metrics.get("test_metrics") or {}
    if test.get("confusion_matrix"):
        pictures[CONFUSION] = _png(_confusion(Figure, test))
    importance = metrics.get("feature_importance") or {}
    if importance:
        spread = metrics.get("feature_importance_spread") or {}
        note = importance_note(importance, test)
        pictures[IMPORTANCE] = _png(_importance(Figure, importance, spread, note))
    return pictures


def importance_note(importance: Mapping[str, float], test_metrics: Mapping[str, Any]) -> str | None:
    """A line for a model whose permutation importance says nothing, or None when it does.

    When every feature's importance is exactly 0, shuffling no column changed a single
    validation prediction: the model answers the same class whatever its input (collapse), and
    an empty chart without a word would read as "no feature matters" instead.
    """
    if any(value != 0 for value in importance.values()):
        return None
    verdict = test_metrics.get("verdict")
    dominant = verdict.get("dominant_class") if isinstance(verdict, Mapping) else None
    if (
        isinstance(verdict, Mapping)
        and verdict.get("collapsed") is True
        and dominant in CLASS_NAMES
    ):
        return (
            f"all importances are 0: the model predicts {dominant} only, so shuffling a "
            "feature changes nothing"
        )
    return "all importances are 0: shuffling any one feature changed no validation prediction"


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    # No date or version in the file: the same metrics always give the same bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _curves(figure_class: Any, training: Mapping[str, Any]) -> Any:
    figure = figure_class(figsize=(9, 3.4))
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.85, wspace=0.25)
    loss, accuracy = figure.subplots(1, 2)
    epochs = list(range(1, len(training["train_loss"]) + 1))
    best = int(training.get("best_epoch") or 0)
    for axis, key, label in ((loss, "loss", "loss"), (accuracy, "accuracy", "accuracy")):
        axis.plot(epochs, training[f"train_{key}"], label="train", color="tab:blue")
        axis.plot(epochs, training[f"val_{key}"], label="validation", color="tab:orange")
        if best:
            axis.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"best ({best})")
        axis.set_xlabel("epoch")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    accuracy.legend(loc="best", fontsize=8)
    stopped = training.get("stopped_by", "")
    figure.suptitle(f"{len(epochs)} epochs, best {best} ({stopped})", fontsize=10)
    return figure


def _confusion(figure_class: Any, test: Mapping[str, Any]) -> Any:
    import numpy as np

    counts = np.asarray(test["confusion_matrix"], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = figure_class(figsize=(5.2, 4.4))
    figure.subplots_adjust(left=0.16, right=0.97, bottom=0.14, top=0.8)
    axis = figure.subplots()
    axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for row in range(counts.shape[0]):
        for column in range(counts.shape[1]):
            axis.text(
                column,
                row,
                f"{int(counts[row, column])}\n{shares[row, column]:.0%}",
                ha="center",
                va="center",
                color="white" if shares[row, column] > 0.6 else "black",
                fontsize=9,
            )
    names = list(CLASS_NAMES)
    axis.set_xticks(range(len(names)), names)
    axis.set_yticks(range(len(names)), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    train_majority = test.get("baseline_accuracy")
    test_majority = test.get("test_majority_baseline_accuracy")
    axis.set_title(
        f"test accuracy {test.get('accuracy', 0):.3f}\n"
        f"baselines: training majority {_num(train_majority)}, test majority "
        f"{_num(test_majority)}",
        fontsize=9,
    )
    return figure


def _importance(
    figure_class: Any,
    importance: Mapping[str, float],
    spread: Mapping[str, float],
    note: str | None,
) -> Any:
    from matplotlib.ticker import MaxNLocator

    ranked = sorted(importance.items(), key=lambda item: -item[1])[:TOP_FEATURES]
    ranked.reverse()  # largest at the top
    height = 0.32 * len(ranked) + 1.4
    figure = figure_class(figsize=(6.4, height))
    figure.subplots_adjust(left=0.42, right=0.97, bottom=0.8 / height, top=1 - 0.35 / height)
    axis = figure.subplots()
    values = [value for _, value in ranked]
    # One standard deviation over the repeats either side: a bar shorter than its whisker is a
    # feature whose importance the repeats cannot tell from 0.
    errors = [float(spread.get(name, 0.0)) for name, _ in ranked]
    axis.barh(
        [name for name, _ in ranked],
        values,
        xerr=errors if any(errors) else None,
        error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "black"},
        color=["tab:green" if v > 0 else "tab:red" for v in values],
    )
    axis.axvline(0, color="black", linewidth=0.8)
    axis.xaxis.set_major_locator(MaxNLocator(4))
    axis.set_xlabel(
        "drop in validation accuracy when shuffled\n(bar: mean, line: 1 sd)", fontsize=8
    )
    axis.set_title(f"top {len(ranked)} features by permutation importance", fontsize=9)
    if note:
        axis.text(
            0.5,
            0.5,
            textwrap.fill(note, 36),
            transform=axis.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="tab:red",
            bbox={"facecolor": "white", "edgecolor": "tab:red", "boxstyle": "round"},
        )
    axis.tick_params(axis="y", labelsize=8)
    return figure


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def render_walk_forward(folds: list[dict[str, Any]]) -> bytes:
    """``walkforward.png``: each fold's test accuracy against both baselines."""
    from matplotlib.figure import Figure

    done = [f for f in folds if f.get("error") is None]
    figure = Figure(figsize=(8, 3.6))
    figure.subplots_adjust(left=0.09, right=0.98, bottom=0.2, top=0.86)
    axis = figure.subplots()
    labels = [f["test_start"] for f in done]
    positions = range(len(done))
    axis.plot(positions, [f["accuracy"] for f in done], "o-", label="model", color="tab:blue")
    axis.plot(
        positions,
        [f["baseline_accuracy"] for f in done],
        "s--",
        label="training majority",
        color="tab:grey",
    )
    axis.plot(
        positions,
        [f["test_majority_baseline_accuracy"] for f in done],
        "^:",
        label="test majority",
        color="tab:orange",
    )
    # "*" above a fold that beats the better baseline, a red "x" under one that collapsed.
    marks = (("beats_baseline", "*", 6, "tab:green", 14), ("collapsed", "x", -14, "tab:red", 11))
    for position, fold in zip(positions, done, strict=True):
        for key, mark, offset, colour, size in marks:
            if fold.get(key):
                axis.annotate(
                    mark,
                    (position, fold["accuracy"]),
                    textcoords="offset points",
                    xytext=(0, offset),
                    ha="center",
                    color=colour,
                    fontsize=size,
                )
    axis.set_xticks(list(positions), labels, rotation=30, fontsize=8)
    axis.set_ylabel("test accuracy")
    axis.set_xlabel("test period start")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="best")
    beating = sum(bool(f.get("beats_baseline")) for f in done)
    collapsed = sum(bool(f.get("collapsed")) for f in done)
    title = f"walk-forward: {len(done)} folds, {beating} beat the better baseline (p < 0.05, *)"
    if collapsed:
        title += f"; {collapsed} predicted one class only (x)"
    axis.set_title(title, fontsize=10)
    return _png(figure)
