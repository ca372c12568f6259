"""ktrdr: train, version and reload neuro-fuzzy trading strategies.

Public API (imported lazily, so that ``import ktrdr`` and the CLI start without loading torch):
``train_strategy``, ``build_run_spec``, ``load_model``, ``load_strategy_config``,
``TrainingExecutor``, ``StrategyTrainer``, ``sweep``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "ktrdr.inference.trained_model",
    "load_strategy_config": "ktrdr.config.loader",
    "build_run_spec": "ktrdr.training.run_spec",
    "train_strategy": "ktrdr.runs.entry",
    "TrainingExecutor": "ktrdr.training.executor",
    "StrategyTrainer": "ktrdr.training.train_strategy",
    "sweep": "ktrdr.sweep",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ktrdr' has no attribute {name!r}")
