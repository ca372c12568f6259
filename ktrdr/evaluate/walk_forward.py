"""Walk-forward evaluation: retrain on rolling (or anchored) windows, test on the period after.

Each fold trains through the same steps as any run on ``[train_start, train_end]`` (its own
train/validation split inside that window, for early stopping) and is tested on
``[test_start, test_end]``, the period right after. The training run reads no bar after
``train_end`` (its last rows, whose labels would need later bars, have none and are dropped),
so no training label looks into the test period: the purge at every boundary. Test labels use
bars after each test row, as any label does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.async_infrastructure.cancellation import CancellationToken, check_cancelled
from ktrdr.errors import CancellationError, DataError, KtrdrError, StrategyConfigError
from ktrdr.runs import InProcessBackend, RunBackend, RunPool, run_all
from ktrdr.runs.ledger import open_ledger
from ktrdr.store.artifact_checks import Expected
from ktrdr.store.model_artifact import ModelArtifact
from ktrdr.store.received import ArtifactRefused, receive_artifact
from ktrdr.training.run_spec import build_run_spec

logger = logging.getLogger(__name__)

_PERIOD = re.compile(r"^([1-9][0-9]{0,3})([DWMY])$")
# Inside a fold's training window: most rows train, the rest decide early stopping. The third
# share is required by the schema; a small one keeps it from taking training rows.
FOLD_SPLIT = {"train": 0.8, "validation": 0.15, "test": 0.05}


@dataclass(frozen=True)
class Fold:
    """One fold: train on [train_start, train_end], test on [test_start, test_end] (UTC days)."""

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def dates(self) -> dict[str, str]:
        return {k: v.date().isoformat() for k, v in asdict(self).items() if k != "index"}

    def training_window(self) -> tuple[str, str]:
        return self.train_start.date().isoformat(), self.train_end.date().isoformat()


def parse_period(text: str, option: str) -> pd.DateOffset:
    """``6M``, ``1M``, ``2W``, ``30D``, ``1Y`` as a calendar offset; StrategyConfigError else."""
    match = _PERIOD.match(str(text).strip().upper())
    if match is None:
        raise StrategyConfigError(
            f"{option} {text!r}: use a count and a unit, e.g. 6M, 2W, 30D or 1Y"
        )
    count, unit = int(match.group(1)), match.group(2)
    return {
        "D": pd.DateOffset(days=count),
        "W": pd.DateOffset(weeks=count),
        "M": pd.DateOffset(months=count),
        "Y": pd.DateOffset(years=count),
    }[unit]


def plan_folds(
    start: str,
    end: str,
    train: str,
    test: str,
    step: str,
    anchored: bool = False,
) -> list[Fold]:
    """The folds over [start, end]: each test period follows its training window; windows move
    by ``step`` (``anchored``: training always starts at ``start`` and grows). A last test period
    that would pass ``end`` is not used. StrategyConfigError when no fold fits."""
    first, last = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    train_for = parse_period(train, "--train")
    test_for = parse_period(test, "--test")
    step_by = parse_period(step, "--step")
    day = pd.Timedelta(days=1)
    folds: list[Fold] = []
    window_start = first
    while True:
        train_start = first if anchored else window_start
        train_end = (window_start + train_for) - day
        if anchored:
            train_end = (first + train_for + step_by * len(folds)) - day
        test_start = train_end + day
        test_end = (test_start + test_for) - day
        if test_end > last:
            break
        folds.append(Fold(len(folds) + 1, train_start, train_end, test_start, test_end))
        window_start = window_start + step_by
    if not folds:
        raise StrategyConfigError(
            f"no walk-forward fold fits {start} .. {end} with --train {train} --test {test}; "
            "use a longer range or shorter windows"
        )
    return folds


def evaluate_fold(
    fold: Fold,
    strategy_config: dict[str, Any],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    data_dir: str | None,
    artifact: ModelArtifact,
) -> dict[str, Any]:
    """Test one fold's trained model on its test period: rows, accuracy, both baselines, p."""
    from ktrdr.data.store import load_bars
    from ktrdr.inference.trained_model import TrainedModel
    from ktrdr.neural.classes import CLASS_NAMES
    from ktrdr.training.evaluation import baseline_comparison, classification_metrics
    from ktrdr.training.label_generation import generate_labels
    from ktrdr.training.verdict import build_verdict

    model = TrainedModel(artifact)
    from ktrdr.data.timeframes import parse_timeframe

    base = model.base_timeframe
    lookahead = int(strategy_config["training"]["labels"]["label_lookahead"])
    # The last test rows' labels need the bars after the test period (weekends included).
    margin = int(np.ceil(lookahead * parse_timeframe(base) / pd.Timedelta(days=1))) + 4
    test_until = (fold.test_end + pd.Timedelta(days=margin)).date().isoformat()
    labels_all, predicted_all = [], []
    for symbol in symbols:
        frames = {}
        for timeframe in timeframes:
            frames[timeframe] = load_bars(
                symbol,
                timeframe,
                fold.test_start.date().isoformat(),
                test_until,
                history_bars=model.stable_history_bars[timeframe],
                data_dir=data_dir,
            )
        predictions = model.predict(frames, start=fold.test_start)
        predictions = predictions[predictions.index < fold.test_end + pd.Timedelta(days=1)]
        labels = generate_labels(frames[base], strategy_config, timeframe=base)
        common = predictions.index.intersection(labels.index)
        labels_all.append(labels.loc[common].to_numpy(dtype=np.int64))
        predicted_all.append(predictions.loc[common, "class_id"].to_numpy(dtype=np.int64))
    labels_array = np.concatenate(labels_all)
    predicted = np.concatenate(predicted_all)
    if len(labels_array) == 0:
        raise DataError(f"fold {fold.index}: no labelled test rows in {fold.dates()}")
    train_counts = model.manifest["class_counts"]["train"]["all"]
    majority = max(CLASS_NAMES, key=lambda name: train_counts.get(name, 0))
    train_baseline = float((labels_array == CLASS_NAMES.index(majority)).mean())
    comparison = baseline_comparison(labels_array, predicted, train_baseline)
    accuracy = float((labels_array == predicted).mean())
    verdict = build_verdict(
        {
            **classification_metrics(labels_array, predicted),
            **comparison,
            "baseline_accuracy": train_baseline,
            "baseline_class": majority,
        }
    )
    if verdict is None:  # every key it needs is computed above: never on finite figures
        raise DataError(f"fold {fold.index}: its test figures are not finite")
    return {
        "fold": fold.index,
        **fold.dates(),
        "test_rows": len(labels_array),
        "accuracy": accuracy,
        "baseline_accuracy": train_baseline,
        **comparison,
        "collapsed": verdict["collapsed"],
        "near_collapse": verdict["near_collapse"],
        "dominant_class": verdict["dominant_class"],
        "dominant_share": verdict["dominant_share"],
        "verdict": verdict["label"],
    }


def walk_forward(
    strategy_config: dict[str, Any],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    folds: Sequence[Fold],
    *,
    data_dir: str | None = None,
    max_parallel: int = 1,
    threads: int | None = None,
    cancellation_token: CancellationToken | None = None,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and test every fold; the folds' rows and a summary (mean, spread, share of folds
    that beat the better baseline). Folds train in this process, or in ``max_parallel`` worker
    processes (``ktrdr.runs``)."""
    from ktrdr.config import load_strategy_config

    config = load_strategy_config(strategy_config, {"training.data_split": FOLD_SPLIT})
    artifacts = train_folds(
        config, symbols, timeframes, folds, data_dir, max_parallel, threads, cancellation_token
    )
    rows = []
    for fold in folds:
        check_cancelled(cancellation_token, f"walk-forward fold {fold.index}")
        outcome = artifacts[fold.index]
        if isinstance(outcome, str):
            row = {"fold": fold.index, **fold.dates(), "error": outcome}
        else:
            try:
                row = evaluate_fold(fold, config, symbols, timeframes, data_dir, outcome)
                row["error"] = None
            except CancellationError:
                raise
            except KtrdrError as exc:
                # A test period without bars or labels is that fold's failure, like a training
                # error: the folds already trained keep their rows.
                row = {"fold": fold.index, **fold.dates(), "error": f"{type(exc).__name__}: {exc}"}
        rows.append(row)
        if on_fold is not None:
            on_fold(row)
    return {"folds": rows, "summary": summarise(rows)}


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r.get("error") is None]
    accuracies = np.array([r["accuracy"] for r in done], dtype=float)
    better = np.array([r["better_baseline_accuracy"] for r in done], dtype=float)
    return {
        "folds": len(rows),
        "failed_folds": len(rows) - len(done),
        "mean_accuracy": float(accuracies.mean()) if len(done) else None,
        "std_accuracy": float(accuracies.std(ddof=1)) if len(done) > 1 else None,
        "mean_better_baseline": float(better.mean()) if len(done) else None,
        "mean_edge": float((accuracies - better).mean()) if len(done) else None,
        "share_beating_baseline": (
            float(np.mean([bool(r["beats_baseline"]) for r in done])) if len(done) else None
        ),
        "share_above_baseline": (float(np.mean(accuracies > better)) if len(done) else None),
        # Folds whose model answered one class only, or 95% or more in one class.
        "collapsed_folds": sum(bool(r.get("collapsed")) for r in done),
        "near_collapse_folds": sum(bool(r.get("near_collapse")) for r in done),
        "collapsed_classes": sorted({str(r["dominant_class"]) for r in done if r.get("collapsed")}),
    }


def train_folds(
    config: dict[str, Any],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    folds: Sequence[Fold],
    data_dir: str | None,
    max_parallel: int,
    threads: int | None,
    token: CancellationToken | None,
) -> dict[int, ModelArtifact | str]:
    """Each fold's checked model, or the error that stopped it; raises CancellationError once
    ``token`` is cancelled. Folds train one after another in this process, or in
    ``max_parallel`` worker processes."""
    specs = {
        fold.index: build_run_spec(
            config,
            symbols,
            timeframes,
            *fold.training_window(),
            save=False,
            threads=threads,
            data_dir=data_dir,
            run_id=f"fold{fold.index}",
            # Each fold is tested on the period after its window, never on its own small test
            # split: warnings about that split's share would only confuse (in every worker too).
            test_split_warnings=False,
        )
        for fold in folds
    }
    backend: RunBackend = (
        InProcessBackend() if max_parallel <= 1 else RunPool(max_parallel, warm=False)
    )

    def listener(run_id: str, status: str, snapshot: dict[str, Any] | None) -> None:
        if status != "running":
            logger.info("walk-forward %s: %s", run_id, status)

    try:
        outcomes = run_all(
            backend, list(specs.values()), token, listener, ledger=open_ledger(data_dir)
        )
    finally:
        backend.shutdown(grace_s=0)
    check_cancelled(token, "walk-forward")
    results: dict[int, ModelArtifact | str] = {}
    for index, spec in specs.items():
        outcome = outcomes[spec.run_id]
        if outcome.status != "completed" or outcome.artifact is None:
            results[index] = f"{outcome.error_type or outcome.status}: {outcome.error}"
            continue
        try:
            expected = Expected.of(spec.name, spec.symbols, spec.timeframes)
            results[index] = receive_artifact(outcome.artifact, expected)
        except ArtifactRefused as exc:
            results[index] = f"ModelStorageError: its model was refused on receipt ({exc})"
    return results
