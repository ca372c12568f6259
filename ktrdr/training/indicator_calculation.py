"""Step 2: technical indicators for one symbol, per timeframe.

See docs/architecture.md: the twelve steps; docs/strategy-reference.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.data.gaps import segment_bounds
from ktrdr.data.validation import check_ohlcv
from ktrdr.errors import DataError
from ktrdr.indicators.compute import compute_indicator
from ktrdr.indicators.registry import REGISTRY

logger = logging.getLogger(__name__)


def calculate_indicators(
    bars: Mapping[str, pd.DataFrame], strategy_config: Mapping[str, Any], *, symbol: str = ""
) -> dict[str, pd.DataFrame]:
    """timeframe -> indicator columns on that timeframe's own index, in configuration order.

    ``bars`` holds one symbol's OHLCV frames by timeframe; ``symbol`` only names it in errors.
    Warm-up values are NaN, also after each gap in the bars (``ktrdr.data.gaps``), where every
    indicator starts afresh. Raises DataError for empty or invalid bars, and for volume
    indicators on bars without volume.
    """
    if not bars:
        raise DataError(f"calculate_indicators: no timeframes given for {symbol or 'the symbol'}")
    max_gap = strategy_config["training_data"].get("max_gap")
    result: dict[str, pd.DataFrame] = {}
    for timeframe, frame in bars.items():
        where = f"{symbol} {timeframe}".strip()
        check_ohlcv(frame, source=f"calculate_indicators({where})")
        # Each stretch between gaps is computed on its own, as if loading started there: no
        # indicator window bridges a gap as if the bars were adjacent.
        segments = segment_bounds(pd.DatetimeIndex(frame.index), timeframe, max_gap)
        columns: dict[str, np.ndarray] = {}
        for indicator in strategy_config["indicators"]:
            spec = REGISTRY[indicator["type"]]
            if len(segments) == 1:
                columns.update(compute_indicator(spec, indicator, frame, where))
                continue
            pieces = [
                compute_indicator(spec, indicator, frame.iloc[start:stop], where)
                for start, stop in segments
            ]
            columns.update({name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]})
        result[timeframe] = pd.DataFrame(columns, index=frame.index.copy())
        logger.debug("%s: %d indicator columns on %d bars", where, len(columns), len(frame))
    return result
