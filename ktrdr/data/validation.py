"""Input checks shared by every loader and step (one named check per input shape).

Each check returns its input unchanged when it is valid and raises DataError otherwise, naming the
source, the first offending rows and what to do about them.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ktrdr.data.timeframes import parse_timeframe
from ktrdr.errors import DataError
from ktrdr.messages import show

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
# The one spelling of a symbol and a timeframe, for every schema that takes them (strategy file,
# sweep file, HTTP bodies) and for check_symbol.
SYMBOL_PATTERN = r"^[A-Za-z0-9._-]{1,20}$"
TIMEFRAME_PATTERN = r"^[0-9]{1,4}[a-zA-Z]{1,3}$"
_SYMBOL_PATTERN = re.compile(SYMBOL_PATTERN[1:-1])
_SHOWN_ROWS = 5


def check_symbol(symbol: str) -> str:
    """A symbol of 1-20 letters, digits, '.', '_' or '-' that is not a path trick."""
    if not isinstance(symbol, str) or not _SYMBOL_PATTERN.fullmatch(symbol) or set(symbol) <= {"."}:
        raise DataError(
            f"invalid symbol {show(symbol)}: use 1-20 letters, digits, '.', '_' or '-' "
            "(e.g. EURUSD)"
        )
    return symbol


def _describe(index: pd.Index, mask: np.ndarray) -> str:
    positions = np.flatnonzero(mask)
    shown = ", ".join(str(index[p]) for p in positions[:_SHOWN_ROWS])
    more = f" and {len(positions) - _SHOWN_ROWS} more" if len(positions) > _SHOWN_ROWS else ""
    return f"{len(positions)} bar(s) at {shown}{more}"


def invalid_bar_mask(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Boolean masks of bars that cannot be real bars, keyed by the reason."""
    o, h, low, c, v = (frame[name].to_numpy(dtype=float) for name in OHLCV_COLUMNS)
    prices = np.column_stack([o, h, low, c])
    return {
        # inf and overflowing values (1e400 parses as inf) are as unusable as missing ones.
        "missing or infinite values": ~np.isfinite(prices).all(axis=1) | ~np.isfinite(v),
        "non-positive prices": (prices <= 0).any(axis=1),
        "high below low": h < low,
        "open or close outside [low, high]": (o < low) | (o > h) | (c < low) | (c > h),
        "negative volume": v < 0,
    }


def _all_bars_valid(frame: pd.DataFrame) -> bool:
    # Comparisons with NaN are False, so missing values fail this check too; inf needs its own.
    o, h, low, c, v = (frame[name].to_numpy(dtype=float) for name in OHLCV_COLUMNS)
    ok = (low > 0) & (h >= low) & (o >= low) & (o <= h) & (c >= low) & (c <= h) & (v >= 0)
    ok &= np.isfinite(h) & np.isfinite(v)
    return bool(ok.all())


def check_ohlcv(frame: pd.DataFrame, source: str, timeframe: str | None = None) -> pd.DataFrame:
    """Check a bar frame: OHLCV float columns, unique sorted UTC open-time index, valid bars.

    With ``timeframe`` the median bar spacing must equal it. Zero volume is valid. Raises DataError.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a DataFrame of bars, got {type(frame).__name__}")
    missing = [name for name in OHLCV_COLUMNS if name not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; bars need "
            f"{', '.join(OHLCV_COLUMNS)}"
        )
    if frame.empty:
        raise DataError(f"{source}: no bars")
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"{source}: the index must hold bar open times (a DatetimeIndex)")
    if index.tz is None or str(index.tz) != "UTC":
        raise DataError(
            f"{source}: bar times must be UTC (got tz={index.tz}); convert with tz_convert"
        )
    if index.has_duplicates:
        dupes = index.duplicated(keep=False)
        raise DataError(f"{source}: duplicate timestamps, {_describe(index, dupes)}")
    if not index.is_monotonic_increasing:
        later = np.r_[False, np.diff(index.as_unit("ns").asi8) < 0]
        raise DataError(f"{source}: timestamps out of order, {_describe(index, later)}; sort them")
    if not _all_bars_valid(frame):
        for reason, mask in invalid_bar_mask(frame).items():
            if mask.any():
                raise DataError(f"{source}: {reason}, {_describe(index, mask)}")
    if timeframe is not None:
        check_spacing(index, timeframe, source)
    return frame


def finer_than_microseconds(index: pd.DatetimeIndex) -> np.ndarray:
    """A mask of the times with a part below a microsecond (only a nanosecond index has one)."""
    if index.unit != "ns":
        # Converting a coarser index to nanoseconds would overflow outside 1677-2262.
        return np.zeros(len(index), dtype=bool)
    return np.asarray(index.asi8 % 1000 != 0)


def check_spacing(index: pd.DatetimeIndex, timeframe: str, source: str) -> None:
    """The median spacing of ``index`` must equal ``timeframe`` (gaps such as weekends are fine)."""
    expected = parse_timeframe(timeframe)
    if len(index) < 3:
        return
    median = pd.Timedelta(int(np.median(np.diff(index.as_unit("ns").asi8))), unit="ns")
    if median != expected:
        raise DataError(
            f"{source}: median bar spacing is {median}, which does not match timeframe "
            f"{timeframe} ({expected}); check the timeframe you declared"
        )


def check_feature_frame(frame: pd.DataFrame, expected_names: Sequence[str], source: str) -> None:
    """Columns must equal ``expected_names`` in order; the error lists unseen and missing names."""
    actual = list(frame.columns)
    expected = list(expected_names)
    if actual == expected:
        return
    unseen = sorted(set(actual) - set(expected))
    missing = sorted(set(expected) - set(actual))
    if not unseen and not missing:
        raise DataError(f"{source}: feature columns are in a different order than at training")
    parts = []
    if unseen:
        parts.append(f"unseen at training: {', '.join(unseen[:_SHOWN_ROWS])}")
    if missing:
        parts.append(f"missing: {', '.join(missing[:_SHOWN_ROWS])}")
    raise DataError(f"{source}: feature names differ from training ({'; '.join(parts)})")


def check_names(values: object, name: str, example: str) -> list[str]:
    """A list of names (symbols, timeframes); a bare string is refused, not split into letters."""
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise DataError(
            f"{name} must be a list such as [{example!r}], not {type(values).__name__} "
            f"{show(values)}"
        )
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise DataError(f"{name} must hold strings, got {show(bad[0])}")
    return list(values)


def parse_time(value: str | pd.Timestamp, name: str) -> pd.Timestamp:
    """A UTC timestamp from an ISO date or time string, a date or a Timestamp (naive means UTC).

    Numbers are refused: ``20170101`` would otherwise be read as nanoseconds after 1970. Raises
    DataError naming ``name``.
    """
    if not isinstance(value, str | datetime.date | pd.Timestamp) or isinstance(value, bool):
        raise DataError(
            f"{name}={show(value)} is a {type(value).__name__}, not a date; use a string YYYY-MM-DD"
        )
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(f"{name}={show(value)} is not a date; use YYYY-MM-DD") from None
    if stamp is pd.NaT:
        raise DataError(f"{name}={show(value)} is not a date; use YYYY-MM-DD")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def parse_day(value: str | pd.Timestamp, name: str) -> pd.Timestamp:
    """A calendar day (UTC midnight) from ``YYYY-MM-DD`` or a timestamp (see ``parse_time``)."""
    return parse_time(value, name).normalize()


# Bars outside these years are a misread column or a placeholder (0001-01-01, 9999-12-31); no
# request asks for them either.
EARLIEST_BAR = pd.Timestamp("1900-01-01", tz="UTC")
LATEST_BAR = pd.Timestamp("2200-01-01", tz="UTC")


def check_date_range(
    start_date: str | pd.Timestamp, end_date: str | pd.Timestamp
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Inclusive UTC days; returns (start at 00:00, midnight after end_date) as [start, stop)."""
    start = parse_day(start_date, "start_date")
    end = parse_day(end_date, "end_date")
    for name, day in (("start_date", start), ("end_date", end)):
        if not EARLIEST_BAR <= day < LATEST_BAR:
            raise DataError(
                f"{name} {str(day)[:10]} lies outside {EARLIEST_BAR.year}-{LATEST_BAR.year - 1}, "
                "the years bars can have; check the date"
            )
    if end < start:
        raise DataError(f"end_date {end.date()} is before start_date {start.date()}")
    return start, end + pd.Timedelta(days=1)
