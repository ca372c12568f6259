"""Step 1: load bars per symbol and timeframe from the local store.

See docs/architecture.md: the twelve steps, bars and time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import pandas as pd

from ktrdr.data.store import load_bars
from ktrdr.errors import DataError

logger = logging.getLogger(__name__)

DATA_MODES = ("local",)


def load_training_data(
    symbols: Sequence[str],
    timeframes: Sequence[str],
    start_date: str,
    end_date: str,
    data_mode: str = "local",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    history_bars: int | Mapping[str, int] = 0,
) -> dict[str, dict[str, pd.DataFrame]]:
    """symbol -> timeframe -> OHLCV bars on the inclusive UTC days, each timeframe native.

    ``symbols``, ``timeframes`` (shortest first) and the dates are a run's, as
    ``build_run_spec`` checked them; what needs the bars is checked here (the store refuses a
    symbol that is not a plain name, a range it does not hold, bars that are not OHLCV). Up to
    ``history_bars`` (one count, or one per timeframe) stored bars before ``start_date`` are
    included for indicator warm-up. Raises DataError naming the missing symbol, timeframe or
    range, or an unsupported ``data_mode``.
    """
    if data_mode not in DATA_MODES:
        raise DataError(f"data_mode={data_mode!r} is not supported; use {', '.join(DATA_MODES)}")
    data: dict[str, dict[str, pd.DataFrame]] = {}
    for symbol in symbols:
        data[symbol] = {}
        for timeframe in timeframes:
            history = (
                history_bars.get(timeframe, 0)
                if isinstance(history_bars, Mapping)
                else history_bars
            )
            data[symbol][timeframe] = load_bars(
                symbol, timeframe, start_date, end_date, history_bars=history, data_dir=data_dir
            )
    total = sum(len(frame) for by_tf in data.values() for frame in by_tf.values())
    logger.info("loaded %d bars for %s x %s", total, ",".join(symbols), ",".join(timeframes))
    return data
