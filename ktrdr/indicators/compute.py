"""Compute one configured indicator with TA-Lib, as the registry declares it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import talib

from ktrdr.errors import DataError
from ktrdr.indicators.registry import IndicatorSpec


def compute_indicator(
    spec: IndicatorSpec, indicator: Mapping[str, Any], bars: pd.DataFrame, where: str
) -> dict[str, np.ndarray]:
    """Output columns of one resolved indicator config on ``bars``: column name -> float64 array.

    ``where`` (e.g. "EURUSD 1h") names the data in errors. Raises DataError when a volume
    indicator meets bars without volume, or TA-Lib rejects the input.
    """
    name = str(indicator["name"])
    if spec.needs_volume and not (bars["volume"].to_numpy() > 0).any():
        raise DataError(
            f"indicator {name!r} ({spec.type}) needs volume, but every {where} bar has zero "
            "volume (common for FX); use an indicator without volume or data that has it"
        )
    inputs = []
    for column in spec.inputs:
        source = indicator["source"] if column == "source" else column
        inputs.append(np.ascontiguousarray(bars[source].to_numpy(dtype="float64")))
    function = getattr(talib, spec.talib_function)
    try:
        raw = function(*inputs, **spec.talib_params(indicator))
    except Exception as exc:  # TA-Lib raises its own exception types from C
        raise DataError(
            f"TA-Lib {spec.talib_function} failed for {name!r} on {where}: {exc}"
        ) from exc
    outputs = list(raw) if isinstance(raw, tuple | list) else [raw]
    if spec.difference_over:
        window = int(indicator[spec.difference_over])
        outputs = [_change_over(np.asarray(out, dtype="float64"), window) for out in outputs]
    close = bars["close"].to_numpy(dtype="float64")
    columns: dict[str, np.ndarray] = {}
    if not spec.outputs:
        columns[name] = _normalise(outputs[0], spec.price_units.get(""), indicator, close)
        return columns
    for suffix, source_ in spec.outputs.items():
        if isinstance(source_, int):
            values = _normalise(outputs[source_], spec.price_units.get(suffix), indicator, close)
        else:
            values = _derived(source_, outputs, inputs[0])
        columns[f"{name}_{suffix}"] = values
    return columns


def _change_over(values: np.ndarray, window: int) -> np.ndarray:
    """values[t] - values[t - window]; NaN for the first ``window`` bars."""
    change = np.full(values.shape, np.nan)
    if window < len(values):
        change[window:] = values[window:] - values[:-window]
    return change


def _normalise(
    values: np.ndarray, unit: str | None, indicator: Mapping[str, Any], close: np.ndarray
) -> np.ndarray:
    if unit is None or indicator.get("normalize", "none") == "none":
        return np.asarray(values, dtype="float64")
    if unit == "level":
        return close / values - 1.0
    return values / close


def _derived(kind: str, outputs: list[np.ndarray], price: np.ndarray) -> np.ndarray:
    upper, middle, lower = outputs[0], outputs[1], outputs[2]
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "pctb":
            # A flat window has zero width: price sits on the middle band, %B = 0.5. Warm-up
            # rows (NaN bands) stay NaN so that they are dropped, never filled.
            pctb = np.where(width > 0, (price - lower) / np.where(width > 0, width, 1.0), 0.5)
            return np.where(np.isnan(width), np.nan, pctb)
        if kind == "bandwidth":
            return width / middle
    raise ValueError(f"unknown derived output {kind!r}")
