"""The manifest of a trained model: what it needs to recompute its features (DESIGN.md §11)."""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.data.timeframes import sort_timeframes
from ktrdr.training.feature_engineering import feature_history_bars
from ktrdr.training.indicator_calculation import indicator_history_bars, indicator_warmup_bars
from ktrdr.training.label_generation import CLASS_NAMES
from ktrdr.training.model_artifact import FORMAT_VERSION

_LIBRARIES = ("ktrdr", "torch", "numpy", "pandas", "ta-lib", "scikit-fuzzy", "pydantic")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def data_fingerprint(bars: Mapping[str, Mapping[str, pd.DataFrame]]) -> str:
    """sha256 over every symbol's and timeframe's bar times and OHLCV values, in sorted order."""
    digest = hashlib.sha256()
    for symbol in sorted(bars):
        for timeframe in sort_timeframes(bars[symbol]):
            frame = bars[symbol][timeframe]
            digest.update(f"{symbol}|{timeframe}|".encode())
            digest.update(pd.DatetimeIndex(frame.index).as_unit("ns").asi8.tobytes())
            digest.update(
                np.ascontiguousarray(
                    frame[["open", "high", "low", "close", "volume"]].to_numpy("float64")
                ).tobytes()
            )
    return digest.hexdigest()


def build_manifest(
    *,
    strategy_config: Mapping[str, Any],
    architecture: Mapping[str, Any],
    feature_names: Sequence[str],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    boundaries: Mapping[str, Any],
    class_counts: Mapping[str, Any],
    fingerprint: str,
    scaled: bool,
) -> dict[str, Any]:
    """Everything prediction needs beside the weights, plus provenance (no metrics, no hashes:
    the store adds the file hashes when it writes the version)."""
    ordered = sort_timeframes(timeframes)
    features = strategy_config["model"]["features"]
    extra = feature_history_bars(strategy_config)
    warmup = indicator_warmup_bars(strategy_config) + extra
    stable = indicator_history_bars(strategy_config) + extra
    return {
        "format_version": FORMAT_VERSION,
        "strategy": strategy_config["name"],
        "created_at": datetime.now(UTC).isoformat(),
        "architecture": dict(architecture),
        "feature_names": list(feature_names),
        "class_map": {str(i): name for i, name in enumerate(CLASS_NAMES)},
        "indicators": list(strategy_config["indicators"]),
        "fuzzy_sets": dict(strategy_config["fuzzy_sets"]),
        "features": dict(features),
        "labels": dict(strategy_config["training"]["labels"]),
        "symbols": list(symbols),
        "timeframes": ordered,
        "base_timeframe": ordered[0],
        "lookback_periods": int(features["lookback_periods"]),
        "warmup_bars": {tf: warmup for tf in ordered},
        "stable_history_bars": {tf: stable for tf in ordered},
        "scaled": scaled,
        "splits": dict(boundaries),
        "class_counts": dict(class_counts),
        "seed": int(strategy_config["training"]["seed"]),
        "library_versions": library_versions(),
        "data_fingerprint": fingerprint,
    }
