"""Train through the step functions directly, with no orchestrator.

The baseline the orchestrators are measured against in ``make bench``: the least a training
can do, the step functions called one after another with no progress, cancellation or checks.
Only the benchmarks use it; the tests train through the library (``tests/training_helpers.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ktrdr.config.features import feature_history_bars, indicator_history_bars
from ktrdr.data.timeframes import base_timeframe
from ktrdr.store.manifest import data_fingerprint
from ktrdr.store.model_artifact import ModelArtifact
from ktrdr.training.artifact_building import build_artifact
from ktrdr.training.data_loading import load_training_data
from ktrdr.training.data_split import DataSplits, split_data
from ktrdr.training.evaluation import evaluate_model
from ktrdr.training.feature_importance import calculate_feature_importance
from ktrdr.training.feature_pipeline import build_features
from ktrdr.training.feature_scaling import fit_scaler, scale_in_place
from ktrdr.training.label_generation import generate_labels
from ktrdr.training.model_creation import create_model, seed_everything
from ktrdr.training.model_training import TRAINING_LOCK, ModelTrainer, TrainingOutcome
from ktrdr.training.result_building import training_metrics


@dataclass
class StepRun:
    artifact: ModelArtifact
    model: nn.Module
    splits: DataSplits
    outcome: TrainingOutcome
    test_metrics: dict[str, Any]
    bars: dict[str, dict[str, pd.DataFrame]]


def split_with_steps(
    config: dict[str, Any],
    symbols: list[str],
    timeframes: list[str],
    start: str,
    end: str,
    data_dir: Path,
) -> tuple[DataSplits, dict[str, dict[str, pd.DataFrame]]]:
    """Steps 1-6a by direct calls: the bars read from the store, and the split they give."""
    history = indicator_history_bars(config) + feature_history_bars(config)
    bars = load_training_data(
        symbols, timeframes, start, end, data_dir=data_dir, history_bars=history
    )
    base = base_timeframe(timeframes)
    per_symbol = {
        s: (
            build_features(bars[s], config, symbol=s, start_date=start, end_date=end),
            generate_labels(bars[s][base], config, timeframe=base),
        )
        for s in symbols
    }
    return split_data(per_symbol, config), bars


def train_with_steps(
    config: dict[str, Any],
    symbols: list[str],
    timeframes: list[str],
    start: str,
    end: str,
    data_dir: Path,
    device: str = "cpu",
    **trainer_kw: Any,
) -> StepRun:
    splits, bars = split_with_steps(config, symbols, timeframes, start, end, data_dir)
    scaler = (
        fit_scaler(splits.train.features) if config["model"]["features"]["scale_features"] else None
    )
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        (
            part.values
            if scaler is None
            else scale_in_place(part.values, part.feature_names, scaler),
            part.labels.to_numpy(dtype=np.int64),
        )
        for part in (splits.train, splits.validation, splits.test)
    )
    with TRAINING_LOCK:
        seed_everything(config["training"]["seed"])
        model = create_model(x_train.shape[1], config)
        outcome = ModelTrainer(config["training"], device=device, **trainer_kw).train(
            model, x_train, y_train, x_val, y_val
        )
    majority = int(np.bincount(y_train, minlength=3).argmax())
    test_metrics = evaluate_model(model, x_test, y_test, device, majority_class=majority)
    importance, spread = calculate_feature_importance(
        model,
        x_val,
        y_val,
        list(splits.feature_names),
        config["training"]["seed"],
        config["training"]["feature_importance"]["repeats"],
        device,
    )
    metrics = {
        "training_metrics": training_metrics(outcome, int(config["training"]["epochs"])),
        "test_metrics": test_metrics,
        "feature_importance": importance,
        "feature_importance_spread": spread,
        "best_epoch": outcome.best_epoch,
    }
    artifact = build_artifact(
        model=model,
        strategy_config=config,
        symbols=symbols,
        timeframes=timeframes,
        splits=splits,
        scaler=scaler,
        fingerprint=data_fingerprint(bars),
        metrics=metrics,
    )
    return StepRun(artifact, model, splits, outcome, test_metrics, bars)


def main() -> None:
    """The whole-command baseline: train the shipped strategy with direct step calls and save.

    ``python scripts/bench/direct_steps.py DATA_DIR MODELS_DIR START END``: the least a
    ``ktrdr train`` can do (imports, steps 1-10 called directly, one thread, the save).
    """
    import sys

    import torch

    from ktrdr.config import load_strategy_config
    from ktrdr.store.model_storage import ModelStorage

    torch.set_num_threads(1)
    data_dir, models_dir, start, end = sys.argv[1:5]
    root = Path(__file__).resolve().parents[2]
    config = load_strategy_config(root / "strategies" / "neuro_mean_reversion.yaml")
    run = train_with_steps(config, ["EURUSD"], ["1h"], start, end, Path(data_dir))
    ModelStorage(models_dir).save_model(run.artifact)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
    sys.stdout.flush()
    os._exit(0)  # as the ktrdr entry point does: no interpreter teardown to wait for
