"""The training pipeline: one module per step (docs/architecture.md: the twelve steps).

``load_model`` and ``TrainedModel`` are exported here too (lazily, torch loads on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_model": "ktrdr.training.inference",
    "TrainedModel": "ktrdr.training.inference",
    "ModelStorage": "ktrdr.training.model_storage",
    "ModelArtifact": "ktrdr.training.model_artifact",
    "TrainingExecutor": "ktrdr.training.executor",
    "StrategyTrainer": "ktrdr.training.train_strategy",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ktrdr.training' has no attribute {name!r}")
