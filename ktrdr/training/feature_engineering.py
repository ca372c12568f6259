"""Step 4: the feature matrix of one symbol on its base timeframe.
See docs/architecture.md: the twelve steps, leakage rules; docs/strategy-reference.md.

Column order, stable and documented (``feature_names`` gives it without data):

    for each timeframe, shortest first:
        the current block: memberships in ``fuzzy_sets`` order ({column}_{set}), then, with
            include_price_context, ret_1, ret_{lookback} (lookback >= 2), range_hl, body
        then the same block lagged by 1 .. lookback_periods bars of that timeframe ({name}_lag_{k})
    multi-timeframe runs prefix every name with its timeframe once: 1h_rsi_oversold_lag_1

Lags are taken on each timeframe's own bars before the join, and a lag (or a return) that would
reach across a gap in the bars (``ktrdr.data.gaps``) is missing, not taken from before the gap. A
higher-timeframe row joins the base bar opening at t only once that higher bar has closed, i.e.
its close <= t + base timeframe (a backward as-of join, never a backfill). A bar closes at open +
its timeframe, or when the next bar opens if that is sooner or at most an hour later: a broker
that stamps bars on a daylight-saving clock (New York) has bars of an hour more or less in UTC,
or moves them all by an hour across a weekend. The joined higher bar is *stale* when the base
bars show that a later higher bar should have closed by then (the higher timeframe's data ends
early or has a hole the base data does not; a stub bin, which resampling leaves out, does not
count, and neither does a next bar that opens within an hour of the base bars resuming, as after
a DST change): such rows are dropped with a warning in training and refused at prediction. Rows
with any NaN (warm-up) are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from ktrdr.config.features import current_feature_names, feature_names, feature_options
from ktrdr.data.gaps import segment_ids
from ktrdr.data.timeframes import STUB_SHARE, parse_timeframe, sort_timeframes
from ktrdr.data.validation import check_date_range, check_ohlcv
from ktrdr.errors import DataError

logger = logging.getLogger(__name__)

# What the model consumes. Each value is computed in float64 and rounded once as it is stored, so
# the feature matrix, its splits and the trainer's input are one size and never converted whole.
FEATURE_DTYPE = np.float32


def engineer_features(
    fuzzy: Mapping[str, pd.DataFrame],
    indicators: Mapping[str, pd.DataFrame],
    bars: Mapping[str, pd.DataFrame],
    strategy_config: Mapping[str, Any],
    *,
    start_date: str | pd.Timestamp | None = None,
    end_date: str | pd.Timestamp | None = None,
    on_stale: Literal["drop", "raise"] = "drop",
    symbol: str = "",
    warnings: list[str] | None = None,
) -> pd.DataFrame:
    """One symbol's features (``FEATURE_DTYPE``): base-timeframe index within [start_date,
    end_date], complete rows.

    ``indicators`` is accepted for the step contract; the features are built from ``fuzzy`` and,
    for price context, ``bars``. Rows whose higher-timeframe context is stale are dropped with a
    warning (``on_stale="drop"``), logged and appended to ``warnings`` when given (a run's
    ``metadata.warnings``), or refused (``"raise"``); ``symbol`` names whose bars they are.
    Raises DataError on empty or mismatched input, or when no complete row remains.
    """
    if not fuzzy:
        raise DataError("engineer_features: no fuzzy membership frames given")
    timeframes = sort_timeframes(fuzzy.keys())
    missing = [tf for tf in timeframes if tf not in bars or tf not in indicators]
    if missing:
        raise DataError(f"engineer_features: no bars or indicators for {', '.join(missing)}")
    lookback, price_context = feature_options(strategy_config)
    current = current_feature_names(strategy_config)
    names = feature_names(strategy_config, timeframes)
    base = timeframes[0]
    base_index = pd.DatetimeIndex(fuzzy[base].index)
    keep = slice(0, len(base_index))
    if start_date is not None or end_date is not None:
        start, stop = check_date_range(
            start_date if start_date is not None else base_index[0],
            end_date if end_date is not None else base_index[-1],
        )
        keep = slice(int(base_index.searchsorted(start)), int(base_index.searchsorted(stop)))
    # One preallocated column-major matrix, filled column by column, becomes the frame without a
    # copy: far cheaper than assembling a frame of many separate columns.
    rows_kept = keep.stop - keep.start
    matrix = np.empty((rows_kept, len(names)), dtype=FEATURE_DTYPE, order="F")
    incomplete = np.zeros(rows_kept, dtype=bool)
    base_known = base_index.as_unit("ns").asi8[keep] + parse_timeframe(base).value
    max_gap = strategy_config["training_data"].get("max_gap")

    column = 0
    for timeframe in timeframes:
        frame = fuzzy[timeframe]
        frame_bars = bars[timeframe]
        if frame.empty:
            raise DataError(f"engineer_features: no {timeframe} rows")
        if not frame.index.equals(frame_bars.index):
            raise DataError(f"engineer_features: {timeframe} memberships and bars are not aligned")
        check_ohlcv(frame_bars, source=f"engineer_features({timeframe})")
        missing_sets = [c for c in current if c not in frame.columns and not _is_price(c)]
        if missing_sets:
            raise DataError(
                f"engineer_features: {timeframe} memberships lack {', '.join(missing_sets)}; "
                "they do not match the strategy's fuzzy_sets"
            )
        segments = segment_ids(pd.DatetimeIndex(frame.index), timeframe, max_gap)
        block = _timeframe_block(frame, frame_bars, current, lookback, price_context, segments)
        if timeframe == base:
            rows: np.ndarray | None = None
        else:
            closes = bar_closes(pd.DatetimeIndex(frame.index), timeframe)
            rows = _as_of_rows(closes, base_known)
            stale = _stale_rows(
                pd.DatetimeIndex(frame.index),
                timeframe,
                closes,
                rows,
                base_index,
                parse_timeframe(base).value,
                base_known,
            )
            if stale.any():
                _report_stale(
                    stale, base_index[keep], timeframe, frame.index, on_stale, symbol, warnings
                )
                rows = np.where(stale, -1, rows)
        for values in block.values():
            if rows is None:
                matrix[:, column] = values[keep]
            else:
                matrix[:, column] = np.where(rows >= 0, values[np.maximum(rows, 0)], np.nan)
            incomplete |= np.isnan(matrix[:, column])
            column += 1
    complete = ~incomplete
    index = base_index[keep][complete]
    if len(index) == 0:
        raise DataError(
            f"no complete feature rows for {base} bars {base_index[0]} .. {base_index[-1]}: the "
            "indicators' warm-up and lags need more bars; load a longer range or more history"
        )
    first = int(np.argmax(complete))
    # Warm-up rows are usually a prefix: then a slice keeps the matrix without copying it.
    kept = matrix[first:] if complete[first:].all() else np.asfortranarray(matrix[complete])
    result = pd.DataFrame(kept, index=index, columns=names, copy=False)
    logger.debug(
        "features: %d rows x %d columns (%d warm-up rows dropped)",
        len(result),
        result.shape[1],
        int((~complete).sum()),
    )
    return result


def _is_price(name: str) -> bool:
    return name in ("ret_1", "range_hl", "body") or (name.startswith("ret_") and name[4:].isdigit())


def _timeframe_block(
    fuzzy: pd.DataFrame,
    bars: pd.DataFrame,
    current: list[str],
    lookback: int,
    price_context: bool,
    segments: np.ndarray,
) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {c: fuzzy[c].to_numpy(dtype="float64") for c in fuzzy.columns}
    if price_context:
        close = bars["close"].to_numpy(dtype="float64")
        values["ret_1"] = close / _shift(close, 1, segments) - 1.0
        if lookback >= 2:
            values[f"ret_{lookback}"] = close / _shift(close, lookback, segments) - 1.0
        values["range_hl"] = (bars["high"].to_numpy() - bars["low"].to_numpy()) / close
        values["body"] = (close - bars["open"].to_numpy()) / close
    block = {name: values[name] for name in current}
    for k in range(1, lookback + 1):
        for name in current:
            block[f"{name}_lag_{k}"] = _shift(values[name], k, segments)
    return block


def _shift(values: np.ndarray, k: int, segments: np.ndarray) -> np.ndarray:
    """``values`` k bars earlier; NaN where that bar does not exist or lies across a gap."""
    shifted = np.full(values.shape, np.nan)
    if k < len(values):
        shifted[k:] = values[: len(values) - k]
        shifted[k:][segments[k:] != segments[: len(values) - k]] = np.nan
    return shifted


# How far a bar's UTC length or alignment may move at a daylight-saving change.
_DST_SHIFT = pd.Timedelta(hours=1).value


def bar_closes(index: pd.DatetimeIndex, timeframe: str) -> np.ndarray:
    """Each bar's close in ns: open + timeframe, or the next bar's open when that comes sooner
    or at most an hour later (a bar that a DST change made shorter or longer in UTC)."""
    opens = index.as_unit("ns").asi8
    step = parse_timeframe(timeframe).value
    closes = opens + step
    if len(opens) > 1:
        following = opens[1:]
        adjacent = following - opens[:-1] <= step + _DST_SHIFT
        closes[:-1] = np.where(adjacent, following, closes[:-1])
    return closes


def _as_of_rows(closes: np.ndarray, base_known: np.ndarray) -> np.ndarray:
    """For each base close time, the row of the latest higher bar (of ``bar_closes``) closed
    by then (-1: none)."""
    # Closes only ever increase (a bar closes at or before the next one opens), as searchsorted
    # needs.
    return np.searchsorted(closes, base_known, side="right") - 1


def _stale_rows(
    index: pd.DatetimeIndex,
    timeframe: str,
    closes: np.ndarray,
    rows: np.ndarray,
    base_index: pd.DatetimeIndex,
    base_step: int,
    base_known: np.ndarray,
) -> np.ndarray:
    """True where the base bars show a higher bar newer than the joined one should have closed.

    The bins of a timeframe tile time from the joined bar's close C onwards. The first bin after
    C that holds base bars should be the next higher bar; once it has closed by the base bar's
    close, the joined bar is older than one higher bar: stale. A bin holding only a stub of base
    bars (which resampling leaves out, see ``resample_bars``) is passed over. When the next
    higher bar exists and opens no later than an hour after the first base bar after C, the
    higher data has no hole there, only bins moved by a DST change: that bar's own close counts.
    """
    stale = np.zeros(len(rows), dtype=bool)
    joined = rows >= 0
    if not joined.any():
        return stale
    step = parse_timeframe(timeframe).value
    stub_below = STUB_SHARE * step / base_step
    base_stamps = base_index.as_unit("ns").asi8
    opens = index.as_unit("ns").asi8
    start = closes[rows[joined]]
    settled = np.zeros(len(start), dtype=bool)
    bin_close = start
    resumes = np.searchsorted(base_stamps, start, side="left")
    for _ in range(2):
        after = np.searchsorted(base_stamps, start, side="left")
        exists = after < len(base_stamps)
        next_open = base_stamps[np.minimum(after, len(base_stamps) - 1)]
        candidate = start + ((next_open - start) // step + 1) * step
        count = np.searchsorted(base_stamps, candidate, side="left") - after
        full = exists & (count >= stub_below)
        pick = ~settled & (full | ~exists)
        bin_close = np.where(pick, np.where(exists, candidate, np.iinfo(np.int64).max), bin_close)
        settled |= pick
        start = np.where(settled, start, candidate)
    following = rows[joined] + 1
    has_next = (following < len(opens)) & (resumes < len(base_stamps))
    safe_next = np.minimum(following, len(opens) - 1)
    first_base = base_stamps[np.minimum(resumes, len(base_stamps) - 1)]
    moved = has_next & (opens[safe_next] <= first_base + _DST_SHIFT)
    bin_close = np.where(moved, closes[safe_next], bin_close)
    stale[joined] = settled & (bin_close <= base_known[joined])
    return stale


def _report_stale(
    stale: np.ndarray,
    base_times: pd.DatetimeIndex,
    timeframe: str,
    higher_index: pd.Index,
    on_stale: str,
    symbol: str,
    warnings: list[str] | None,
) -> None:
    first = base_times[int(np.argmax(stale))]
    message = (
        f"{symbol + ': ' if symbol else ''}{int(stale.sum())} base bar(s) from {first} on would "
        f"use {timeframe} context older than one {timeframe} bar (the {timeframe} bars end at "
        f"{higher_index[-1]} or have a hole the base bars do not); update the {timeframe} data"
    )
    if on_stale == "raise":
        raise DataError(message)
    message += "; those rows are left out"
    logger.warning("%s", message)
    if warnings is not None:
        warnings.append(message)
