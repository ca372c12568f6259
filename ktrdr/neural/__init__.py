"""Model definitions, rebuilt from plain architecture specs (no pickled code).

``build_mlp`` and ``ACTIVATIONS`` load torch on first use: ``ktrdr.neural.classes`` (the class
names that verdicts and listings read) imports without it.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ACTIVATIONS", "build_mlp"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("ktrdr.neural.mlp"), name)
    raise AttributeError(f"module 'ktrdr.neural' has no attribute {name!r}")
