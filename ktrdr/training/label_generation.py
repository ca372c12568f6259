"""Step 5: BUY/HOLD/SELL labels from future closes (docs/architecture.md: labels)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.data.gaps import segment_bounds
from ktrdr.data.timeframes import infer_timeframe
from ktrdr.data.validation import check_ohlcv
from ktrdr.errors import DataError

logger = logging.getLogger(__name__)

BUY, HOLD, SELL = 0, 1, 2


def generate_labels(
    base_bars: pd.DataFrame, strategy_config: Mapping[str, Any], *, timeframe: str | None = None
) -> pd.Series:
    """int8 ``label`` per bar from closes t+1..t+L; bars without a full window are dropped.

    BUY=0 when a close reaches c_t*(1+θ) before any reaches c_t*(1-θ), SELL=2 the other way,
    HOLD=1 when neither does within L bars. A window never reaches across a gap in the bars
    (``ktrdr.data.gaps``): the last L bars before each gap are dropped like the last L bars of
    the data. ``timeframe`` defaults to the bars' median spacing. Raises DataError on invalid or
    too few bars.
    """
    check_ohlcv(base_bars, source="generate_labels")
    threshold, lookahead = _label_params(strategy_config)
    if len(base_bars) <= lookahead:
        raise DataError(
            f"{len(base_bars)} bars <= label_lookahead={lookahead}; load a longer range"
        )
    index = pd.DatetimeIndex(base_bars.index)
    close = base_bars["close"].to_numpy(dtype="float64")
    segments = segment_bounds(
        index,
        timeframe or infer_timeframe(index),
        strategy_config["training_data"].get("max_gap"),
    )
    labels, positions = [], []
    for start, stop in segments:
        if stop - start > lookahead:
            labels.append(_first_crossing(close[start:stop], threshold, lookahead))
            positions.append(np.arange(start, stop - lookahead))
    if not labels:
        raise DataError(
            f"no stretch of bars between gaps is longer than label_lookahead={lookahead}; "
            "load a longer range"
        )
    values = np.concatenate(labels)
    logger.debug("labelled %d of %d bars (lookahead %d)", len(values), len(base_bars), lookahead)
    return pd.Series(values, index=index[np.concatenate(positions)], name="label")


def _label_params(strategy_config: Mapping[str, Any]) -> tuple[float, int]:
    labels = strategy_config["training"]["labels"]
    if labels.get("source", "zigzag") != "zigzag":
        raise DataError(f"training.labels.source={labels['source']!r} is not supported")
    return float(labels["zigzag_threshold"]), int(labels["label_lookahead"])


def _first_crossing(close: np.ndarray, threshold: float, lookahead: int) -> np.ndarray:
    """Labels for bars 0..n-L-1, one vectorised pass per step ahead (L passes in all)."""
    n = len(close) - lookahead
    base = close[:n]
    up_level = base * (1.0 + threshold)
    down_level = base * (1.0 - threshold)
    never = lookahead + 1
    first_up = np.full(n, never, dtype=np.int32)
    first_down = np.full(n, never, dtype=np.int32)
    # Walk from the far end so that the nearest crossing is written last and wins.
    for k in range(lookahead, 0, -1):
        ahead = close[k : k + n]
        first_up[ahead >= up_level] = k
        first_down[ahead <= down_level] = k
    labels = np.full(n, HOLD, dtype=np.int8)
    labels[first_up < first_down] = BUY
    labels[first_down < first_up] = SELL
    return labels
