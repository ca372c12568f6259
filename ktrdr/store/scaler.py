"""The fitted scaler as a saved model keeps it: plain numbers per named feature, JSON both ways.

Fitting and applying it are step 6 (``ktrdr/training/feature_scaling.py``); this is only what is
stored, so a model loads without the training code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ktrdr.errors import DataError


@dataclass(frozen=True)
class ScalerParams:
    """z-score parameters fitted on training rows: (x - centre) / scale, per named feature.

    ``lows`` and ``highs`` are each feature's smallest and largest training value, what
    ``predict`` compares new rows with to warn of drift; versions saved before they were kept
    have None.
    """

    feature_names: tuple[str, ...]
    centers: tuple[float, ...]
    scales: tuple[float, ...]
    lows: tuple[float, ...] | None = None
    highs: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": "standard",
            "feature_names": list(self.feature_names),
            "centers": list(self.centers),
            "scales": list(self.scales),
        }
        if self.lows is not None and self.highs is not None:
            document["lows"] = list(self.lows)
            document["highs"] = list(self.highs)
        return document

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScalerParams:
        """Rebuild from ``to_dict`` output; DataError when it is inconsistent."""
        try:
            names = tuple(str(n) for n in data["feature_names"])
            centers = tuple(float(c) for c in data["centers"])
            scales = tuple(float(s) for s in data["scales"])
            has_range = "lows" in data or "highs" in data
            lows = tuple(float(v) for v in data["lows"]) if has_range else None
            highs = tuple(float(v) for v in data["highs"]) if has_range else None
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"scaler parameters are malformed ({exc})") from exc
        if not len(names) == len(centers) == len(scales):
            raise DataError("scaler parameters have different lengths")
        if not all(np.isfinite(centers)) or not all(s > 0 and np.isfinite(s) for s in scales):
            raise DataError("scaler parameters hold non-finite centres or non-positive scales")
        if lows is not None and highs is not None:
            if not len(lows) == len(highs) == len(names):
                raise DataError("scaler parameters have different lengths")
            if not all(np.isfinite(lows)) or not all(np.isfinite(highs)):
                raise DataError("scaler parameters hold a non-finite training range")
            if any(low > high for low, high in zip(lows, highs, strict=True)):
                raise DataError("scaler parameters hold a training range whose low is above high")
        return cls(names, centers, scales, lows, highs)
