"""Step 2: technical indicators for one symbol, per timeframe (DESIGN.md §3, §4)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

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
    Warm-up values are NaN. Raises DataError for empty or invalid bars, and for volume
    indicators on bars without volume.
    """
    if not bars:
        raise DataError(f"calculate_indicators: no timeframes given for {symbol or 'the symbol'}")
    result: dict[str, pd.DataFrame] = {}
    for timeframe, frame in bars.items():
        where = f"{symbol} {timeframe}".strip()
        check_ohlcv(frame, source=f"calculate_indicators({where})")
        columns = {}
        for indicator in strategy_config["indicators"]:
            spec = REGISTRY[indicator["type"]]
            columns.update(compute_indicator(spec, indicator, frame, where))
        result[timeframe] = pd.DataFrame(columns, index=frame.index.copy())
        logger.debug("%s: %d indicator columns on %d bars", where, len(columns), len(frame))
    return result


def indicator_history_bars(strategy_config: Mapping[str, Any]) -> int:
    """Bars of history after which every indicator of the strategy is stable (DESIGN.md §11)."""
    return max(
        (REGISTRY[i["type"]].stable_history_bars(i) for i in strategy_config["indicators"]),
        default=0,
    )


def indicator_warmup_bars(strategy_config: Mapping[str, Any]) -> int:
    """Bars before every indicator of the strategy has its first value."""
    return max(
        (REGISTRY[i["type"]].warmup_bars(i) for i in strategy_config["indicators"]), default=0
    )
