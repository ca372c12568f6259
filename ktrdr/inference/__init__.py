"""Prediction with a saved model: ``load_model(path_or_id)`` gives a ``TrainedModel``.

Imported lazily, so that ``import ktrdr.inference`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_model": "ktrdr.inference.trained_model",
    "TrainedModel": "ktrdr.inference.trained_model",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ktrdr.inference' has no attribute {name!r}")
