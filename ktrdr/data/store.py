"""The local bar store: one CSV per symbol and timeframe (DESIGN.md §5).

``{data_dir}/{SYMBOL}_{TIMEFRAME}.csv`` with columns ``timestamp, open, high, low, close, volume``;
timestamps are bar open times in ISO 8601 with a UTC offset. Files are replaced atomically.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ktrdr import settings
from ktrdr.data.timeframes import TIMEFRAMES, parse_timeframe
from ktrdr.data.validation import OHLCV_COLUMNS, check_date_range, check_ohlcv, check_symbol
from ktrdr.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreEntry:
    """One store file: what it holds and where."""

    symbol: str
    timeframe: str
    path: Path
    bars: int
    first: pd.Timestamp
    last: pd.Timestamp


@dataclass(frozen=True)
class WriteReport:
    """What a write did to a store file."""

    path: Path
    added: int
    replaced: int
    unchanged: int
    total: int


def store_path(symbol: str, timeframe: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The file holding ``symbol`` at ``timeframe``; validates both (DataError)."""
    check_symbol(symbol)
    parse_timeframe(timeframe)
    return settings.data_dir(data_dir) / f"{symbol}_{timeframe}.csv"


def read_store_file(path: Path, timeframe: str | None = None) -> pd.DataFrame:
    """All bars of one store file, validated; DataError names the file on any problem."""
    if not path.is_file():
        raise DataError(
            f"{path} does not exist; run 'ktrdr data sample' or 'ktrdr data import' first"
        )
    try:
        frame = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable bar file ({exc})") from exc
    if frame.empty:
        raise DataError(f"{path}: no bars; re-import the data")
    try:
        frame.index = pd.to_datetime(frame.index, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: unparseable timestamps ({exc})") from exc
    frame.index.name = "timestamp"
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    frame = frame[list(OHLCV_COLUMNS)].astype("float64")
    return check_ohlcv(frame, source=str(path), timeframe=timeframe)


def load_bars(
    symbol: str,
    timeframe: str,
    start_date: str | pd.Timestamp | None = None,
    end_date: str | pd.Timestamp | None = None,
    *,
    history_bars: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Bars opening on the inclusive UTC days [start_date, end_date], plus up to ``history_bars``
    stored bars before start_date (for indicator warm-up).

    A range the store covers only in part loads what exists and logs the actual first and last bar.
    Raises DataError when the file is missing or nothing lies in the range.
    """
    path = store_path(symbol, timeframe, data_dir)
    bars = read_store_file(path, timeframe)
    if start_date is None and end_date is None:
        return bars
    start, end_exclusive = check_date_range(
        start_date if start_date is not None else bars.index[0],
        end_date if end_date is not None else bars.index[-1],
    )
    first = int(bars.index.searchsorted(start, side="left"))
    stop = int(bars.index.searchsorted(end_exclusive, side="left"))
    if stop <= first:
        raise DataError(
            f"no {symbol} {timeframe} bars from {start.date()} to "
            f"{(end_exclusive - pd.Timedelta(days=1)).date()}; the store ({path}) holds "
            f"{bars.index[0]} to {bars.index[-1]}"
        )
    selected = bars.iloc[max(0, first - max(0, history_bars)) : stop]
    in_range = bars.index[first:stop]
    last_day = end_exclusive - pd.Timedelta(days=1)
    # Weekends and holidays leave a few days without bars at either end; more than that means the
    # store does not cover the range.
    slack = pd.Timedelta(days=4)
    if in_range[0] - start > slack or end_exclusive - in_range[-1] > slack:
        logger.warning(
            "%s %s: the store covers only part of %s..%s; using bars %s..%s",
            symbol,
            timeframe,
            start.date(),
            last_day.date(),
            in_range[0],
            in_range[-1],
        )
    else:
        logger.info(
            "%s %s: %d bars %s..%s (+%d history)",
            symbol,
            timeframe,
            len(in_range),
            in_range[0],
            in_range[-1],
            first - max(0, first - max(0, history_bars)),
        )
    return selected.copy()


def write_bars(
    symbol: str,
    timeframe: str,
    bars: pd.DataFrame,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    replace: bool = False,
) -> WriteReport:
    """Merge ``bars`` into the store file, atomically.

    A bar that exists with different values is a DataError unless ``replace`` (then the new one
    wins). Nothing is written when the call raises.
    """
    path = store_path(symbol, timeframe, data_dir)
    incoming = check_ohlcv(
        bars[list(OHLCV_COLUMNS)].astype("float64"), f"{symbol} {timeframe}", timeframe
    )
    added, replaced, unchanged = len(incoming), 0, 0
    if path.exists():
        existing = read_store_file(path, timeframe)
        common = existing.index.intersection(incoming.index)
        if len(common):
            differs = (existing.loc[common] != incoming.loc[common]).any(axis=1)
            conflicts = common[differs.to_numpy()]
            if len(conflicts) and not replace:
                shown = ", ".join(str(t) for t in conflicts[:5])
                raise DataError(
                    f"{len(conflicts)} bar(s) already in {path} have different values "
                    f"(first: {shown}); pass --replace to overwrite them"
                )
            replaced = len(conflicts)
            unchanged = len(common) - replaced
        added = len(incoming) - len(common)
        merged = pd.concat([existing.drop(index=common), incoming]).sort_index()
    else:
        merged = incoming
    _atomic_write_csv(merged, path)
    logger.info(
        "wrote %s: %d added, %d replaced, %d bars in all", path, added, replaced, len(merged)
    )
    return WriteReport(
        path=path, added=added, replaced=replaced, unchanged=unchanged, total=len(merged)
    )


def _atomic_write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    out.index = _iso_stamps(pd.DatetimeIndex(frame.index))
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="") as stream:
            out.to_csv(stream)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _iso_stamps(index: pd.DatetimeIndex) -> pd.Index:
    """ISO 8601 UTC stamps with the offset, in one vectorised call; microseconds only if used."""
    utc = index.tz_convert("UTC")
    fmt = (
        "%Y-%m-%dT%H:%M:%S.%f+00:00" if (utc.microsecond != 0).any() else "%Y-%m-%dT%H:%M:%S+00:00"
    )
    return pd.Index(utc.strftime(fmt), name="timestamp")


def list_store(data_dir: str | os.PathLike[str] | None = None) -> list[StoreEntry]:
    """Every valid store file under ``data_dir``, sorted by symbol then timeframe.

    Files that do not follow the naming scheme are skipped; unreadable ones raise DataError.
    """
    folder = settings.data_dir(data_dir)
    entries: list[StoreEntry] = []
    if not folder.is_dir():
        return entries
    for path in sorted(folder.glob("*_*.csv")):
        symbol, _, timeframe = path.stem.rpartition("_")
        if timeframe not in TIMEFRAMES or not symbol:
            continue
        bars = read_store_file(path, timeframe)
        entries.append(
            StoreEntry(symbol, timeframe, path, len(bars), bars.index[0], bars.index[-1])
        )
    entries.sort(key=lambda e: (e.symbol, TIMEFRAMES[e.timeframe]))
    return entries
