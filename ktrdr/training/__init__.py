"""The training pipeline: one module per step (docs/architecture.md: the twelve steps).

The executor, the facade and the run spec are exported here (lazily, torch loads on first use).
Saved models live in ``ktrdr.store``, prediction in ``ktrdr.inference``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RunSpec": "ktrdr.training.run_spec",
    "build_run_spec": "ktrdr.training.run_spec",
    "TrainingExecutor": "ktrdr.training.executor",
    "StrategyTrainer": "ktrdr.training.train_strategy",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ktrdr.training' has no attribute {name!r}")
