"""Timeframes and resampling (docs/architecture.md: bars and time).

A bar is stamped with its open time and becomes known at its close, ``open + timeframe``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ktrdr.errors import DataError

TIMEFRAMES: dict[str, pd.Timedelta] = {
    "1m": pd.Timedelta(minutes=1),
    "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15),
    "30m": pd.Timedelta(minutes=30),
    "1h": pd.Timedelta(hours=1),
    "4h": pd.Timedelta(hours=4),
    "1d": pd.Timedelta(days=1),
    "1w": pd.Timedelta(weeks=1),
}

# Weekly bars open on Monday 00:00 UTC; every other bin is aligned to midnight UTC.
_RESAMPLE_RULES = {
    "1m": "1min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "1h": "1h",
    "4h": "4h",
    "1d": "1D",
    "1w": "W-MON",
}


def parse_timeframe(timeframe: str) -> pd.Timedelta:
    """The duration of ``timeframe``; raises DataError listing the valid ones."""
    try:
        return TIMEFRAMES[timeframe]
    except (KeyError, TypeError):
        raise DataError(
            f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}"
        ) from None


def infer_timeframe(index: pd.Index) -> str:
    """The timeframe whose duration equals the median spacing of ``index`` (DataError if none)."""
    stamps = pd.DatetimeIndex(index).as_unit("ns").asi8
    if len(stamps) < 2:
        raise DataError("cannot tell the timeframe of fewer than two bars; name it")
    median = pd.Timedelta(int(np.median(np.diff(stamps))), unit="ns")
    for name, step in TIMEFRAMES.items():
        if step == median:
            return name
    raise DataError(
        f"median bar spacing {median} is not a known timeframe ({', '.join(TIMEFRAMES)})"
    )


def sort_timeframes(timeframes: Iterable[str]) -> list[str]:
    """Timeframes from shortest to longest (the first is the base timeframe); duplicates removed."""
    unique = list(dict.fromkeys(timeframes))
    for timeframe in unique:
        parse_timeframe(timeframe)
    return sorted(unique, key=lambda tf: TIMEFRAMES[tf])


def base_timeframe(timeframes: Iterable[str]) -> str:
    """The lowest of ``timeframes``; raises DataError when none is given."""
    ordered = sort_timeframes(timeframes)
    if not ordered:
        raise DataError("no timeframe given; list at least one, for example 1h")
    return ordered[0]


# A bin holding less than this share of the typical (median) number of source bars per bin is a
# stub, such as the hour or two of Sunday evening that FX markets trade before a UTC midnight;
# so is a bin whose session opens late in it and runs on into the next bin with less than this
# share of a whole bin's source bars (the same stub, told apart without a typical count).
STUB_SHARE = 0.25


def resample_bars(bars: pd.DataFrame, source_timeframe: str, target_timeframe: str) -> pd.DataFrame:
    """Aggregate ``bars`` to a longer timeframe, keeping open-time stamps.

    Each target bar covers the source bars opening in [open, open + target): open of the first,
    highest high, lowest low, close of the last, summed volume. Bins without source bars (weekends,
    holidays) are left out, never filled. Two kinds of bin are dropped rather than stored as if
    they were full bars: stubs (fewer than a quarter of the median source bars per bin, such as
    FX's Sunday-evening hours at a UTC-midnight daily boundary; or a session that opens late in
    a bin, after a pause or where the bars begin, and runs on into the next bin, holding under
    a quarter of the source bars a whole bin has, which needs no typical count and so holds on
    a few days of bars too) and the last bin when the source bars end before it closes (it may
    still grow). Raises DataError if the target is not longer.
    """
    return resample_with_report(bars, source_timeframe, target_timeframe)[0]


def resample_with_report(
    bars: pd.DataFrame, source_timeframe: str, target_timeframe: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``resample_bars`` plus the count of dropped bins by reason (``stub``, ``partial last``)."""
    source = parse_timeframe(source_timeframe)
    target = parse_timeframe(target_timeframe)
    if target <= source:
        raise DataError(
            f"cannot resample {source_timeframe} bars to {target_timeframe}; "
            "the target timeframe must be longer"
        )
    if target_timeframe != "1w" and target % source != pd.Timedelta(0):
        raise DataError(
            f"{target_timeframe} is not a whole multiple of {source_timeframe}; "
            "pick a target that source bars tile exactly"
        )
    if bars.empty:
        return bars.copy(), {}
    grouped = bars.resample(_RESAMPLE_RULES[target_timeframe], label="left", closed="left")
    result = grouped.agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    counts = grouped["close"].count()
    result, counts = result[counts > 0], counts[counts > 0]
    stub = (counts < STUB_SHARE * counts.median()).to_numpy() | _session_stubs(
        bars, _RESAMPLE_RULES[target_timeframe], counts, source, target
    )
    partial = np.zeros(len(result), dtype=bool)
    source_end = bars.index[-1] + source
    if len(result) and result.index[-1] + target > source_end:
        partial[-1] = True
    dropped = {"stub": int((stub & ~partial).sum()), "partial last": int(partial.sum())}
    result = result[~(stub | partial)]
    result.index.name = bars.index.name
    return result, {reason: n for reason, n in dropped.items() if n}


def _session_stubs(
    bars: pd.DataFrame,
    rule: str,
    counts: pd.Series,
    source: pd.Timedelta,
    target: pd.Timedelta,
) -> np.ndarray:
    """True for each non-empty bin (``counts``) whose bars open later than the bin does, after
    a pause (or where ``bars`` begin), run to the bin's end with the next bin's first bar right
    after, and number under ``STUB_SHARE`` of the bars a whole bin holds: a session's first
    hours cut off by the bin boundary. A session that ends inside its bin (stock hours) never
    is one."""
    stamps = pd.Series(pd.DatetimeIndex(bars.index).as_unit("ns").asi8, index=bars.index)
    spans = stamps.resample(rule, label="left", closed="left").agg(["min", "max"])
    spans = spans.loc[counts.index]
    first = spans["min"].to_numpy(dtype=np.int64)
    last = spans["max"].to_numpy(dtype=np.int64)
    step = source.value
    bin_opens = pd.DatetimeIndex(counts.index).as_unit("ns").asi8
    previous_end = np.concatenate([[np.iinfo(np.int64).min // 2], last[:-1] + step])
    opens_late = (first > bin_opens) & (previous_end < first)
    ends_at_boundary = last + step == bin_opens + target.value
    runs_on = np.append(first[1:] == last[:-1] + step, False) & ends_at_boundary
    return opens_late & runs_on & (counts.to_numpy() < STUB_SHARE * (target / source))
