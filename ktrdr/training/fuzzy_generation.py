"""Step 3: fuzzy membership degrees for one symbol, per timeframe.
See docs/architecture.md: the twelve steps; docs/strategy-reference.md.

Membership functions are scikit-fuzzy's. A value outside a set's support [a, d] has membership 0,
as scikit-fuzzy defines it; open-ended sets need wide outer bounds (e.g. [65, 80, 100, 100] for
RSI). NaN in gives NaN out: scikit-fuzzy alone maps NaN to 0 (trimf) or even 1 (trapmf).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import skfuzzy

from ktrdr.errors import DataError

logger = logging.getLogger(__name__)


def membership(values: np.ndarray, kind: str, parameters: list[float]) -> np.ndarray:
    """Degrees in [0, 1] of ``values`` in one set; NaN where the value is NaN."""
    values = np.asarray(values, dtype="float64")
    if kind == "triangular":
        degrees = skfuzzy.trimf(values, parameters)
    elif kind == "trapezoidal":
        degrees = skfuzzy.trapmf(values, parameters)
    elif kind == "gaussian":
        degrees = skfuzzy.gaussmf(values, parameters[0], parameters[1])
    else:
        raise DataError(f"unknown membership function {kind!r}")
    return np.where(np.isnan(values), np.nan, degrees)


def generate_fuzzy_memberships(
    indicators: Mapping[str, pd.DataFrame], strategy_config: Mapping[str, Any]
) -> dict[str, pd.DataFrame]:
    """timeframe -> ``{column}_{set}`` membership columns, in the order of ``fuzzy_sets``.

    ``indicators`` holds one symbol's indicator frames by timeframe. Raises DataError when empty
    or when a fuzzy set names a column that is not there.
    """
    if not indicators:
        raise DataError("generate_fuzzy_memberships: no indicator frames given")
    fuzzy_sets: Mapping[str, Mapping[str, Mapping[str, Any]]] = strategy_config["fuzzy_sets"]
    result: dict[str, pd.DataFrame] = {}
    for timeframe, frame in indicators.items():
        if frame.empty:
            raise DataError(f"generate_fuzzy_memberships: no {timeframe} indicator rows")
        columns: dict[str, np.ndarray] = {}
        for column, sets in fuzzy_sets.items():
            if column not in frame.columns:
                raise DataError(
                    f"fuzzy_sets.{column}: no such indicator column on {timeframe} "
                    f"(have {', '.join(frame.columns)})"
                )
            values = frame[column].to_numpy(dtype="float64")
            for set_name, spec in sets.items():
                columns[f"{column}_{set_name}"] = membership(
                    values, spec["type"], list(spec["parameters"])
                )
        result[timeframe] = pd.DataFrame(columns, index=frame.index.copy())
    return result
