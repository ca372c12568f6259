"""The tests' ways to a checked run spec and to a trained model that is not saved (through the
library's own facade)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ktrdr.training.run_spec import RunSpec, TrainingRun, build_run_spec
from ktrdr.training.train_strategy import StrategyTrainer
from tests.conftest import STRATEGIES_DIR


def train_without_saving(
    config: dict[str, Any],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    start: str,
    end: str,
    data_dir: Path,
) -> TrainingRun:
    """Train ``config`` on one thread with ``save=False``; the run, its artifact unsaved."""
    spec = build_run_spec(
        config, symbols, timeframes, start, end, save=False, threads=1, data_dir=data_dir
    )
    return StrategyTrainer().train(spec)


def short_spec(data_dir: Path | None, *, epochs: int = 1, **fields: Any) -> RunSpec:
    """A checked spec of the real strategy on two months of EURUSD 1h, ``epochs`` long (early
    stopping never cuts it shorter), on one thread; ``fields`` go to ``build_run_spec``."""
    fields.setdefault("threads", 1)
    return build_run_spec(
        STRATEGIES_DIR / "neuro_mean_reversion.yaml",
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-02-28",
        overrides={"training.epochs": epochs, "training.early_stopping.patience": epochs},
        data_dir=data_dir,
        **fields,
    )
