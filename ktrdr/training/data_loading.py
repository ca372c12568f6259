"""Step 1: load bars per symbol and timeframe from the local store.

See docs/architecture.md: the twelve steps, bars and time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import pandas as pd

from ktrdr.data.store import load_bars
from ktrdr.data.timeframes import sort_timeframes
from ktrdr.data.validation import check_date_range, check_names, check_symbol
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

    Up to ``history_bars`` (one count, or one per timeframe) stored bars before ``start_date``
    are included for indicator warm-up. Raises DataError naming the missing symbol, timeframe or
    range, or an unsupported ``data_mode``.
    """
    if data_mode not in DATA_MODES:
        raise DataError(f"data_mode={data_mode!r} is not supported; use {', '.join(DATA_MODES)}")
    symbols = check_names(symbols, "symbols", "EURUSD")
    timeframes = check_names(timeframes, "timeframes", "1h")
    if not symbols:
        raise DataError("no symbols given; name at least one, e.g. EURUSD")
    if len(set(symbols)) != len(symbols):
        raise DataError(f"symbols are listed more than once: {', '.join(symbols)}")
    for symbol in symbols:
        check_symbol(symbol)
    ordered = sort_timeframes(timeframes)
    if not ordered:
        raise DataError("no timeframes given; name at least one, e.g. 1h")
    check_date_range(start_date, end_date)
    data: dict[str, dict[str, pd.DataFrame]] = {}
    for symbol in symbols:
        data[symbol] = {}
        for timeframe in ordered:
            history = (
                history_bars.get(timeframe, 0)
                if isinstance(history_bars, Mapping)
                else history_bars
            )
            data[symbol][timeframe] = load_bars(
                symbol, timeframe, start_date, end_date, history_bars=history, data_dir=data_dir
            )
    total = sum(len(frame) for by_tf in data.values() for frame in by_tf.values())
    logger.info("loaded %d bars for %s x %s", total, ",".join(symbols), ",".join(ordered))
    return data


def check_run_request(
    symbols: object, timeframes: object, start_date: object, end_date: object
) -> tuple[list[str], list[str]]:
    """(symbols, timeframes shortest first) of a run, checked as the Python API receives them.

    A bare string for symbols or timeframes and a number for a date are DataErrors: ``"EURUSD"``
    would otherwise become six one-letter symbols and ``20170101`` a time in 1970.
    """
    checked_symbols = check_names(symbols, "symbols", "EURUSD")
    checked_timeframes = check_names(timeframes, "timeframes", "1h")
    check_date_range(start_date, end_date)  # type: ignore[arg-type]
    return checked_symbols, sort_timeframes(checked_timeframes)
