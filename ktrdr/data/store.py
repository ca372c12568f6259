"""The local bar store: one CSV per symbol and timeframe (docs/architecture.md: bars and time).

``{data_dir}/{SYMBOL}_{TIMEFRAME}.csv`` with columns ``timestamp, open, high, low, close, volume``;
timestamps are bar open times in ISO 8601 with a UTC offset. Every read-merge-write holds the
file's exclusive lock, and the new file appears by an fsynced atomic rename, so concurrent imports
never lose bars and a reader never sees half a file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ktrdr import settings
from ktrdr.data.gaps import Gap, describe_gaps, find_gaps, gap_starts
from ktrdr.data.timeframes import TIMEFRAMES, parse_timeframe
from ktrdr.data.validation import (
    EARLIEST_BAR,
    LATEST_BAR,
    OHLCV_COLUMNS,
    check_date_range,
    check_ohlcv,
    check_symbol,
    finer_than_microseconds,
)
from ktrdr.errors import DataError
from ktrdr.fileio import atomic_write, exclusive_lock, lock_path_for
from ktrdr.messages import shorten

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreEntry:
    """One store file: what it holds and where, or why it cannot be read (``error``)."""

    symbol: str
    timeframe: str
    path: Path
    bars: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    gaps: tuple[Gap, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class WriteReport:
    """What a write did to a store file."""

    path: Path
    added: int
    replaced: int
    unchanged: int
    total: int
    conflicts: tuple[pd.Timestamp, ...] = field(default=())
    written: bool = True
    # Stored bars inside the new bars' range that they do not hold, dropped by ``replace``.
    removed: int = 0
    # How far the new bars' times lie from the stored bars with the same values (another zone;
    # two shifts an hour apart when the range crosses a daylight-saving change).
    offsets: tuple[pd.Timedelta, ...] = ()


@dataclass(frozen=True)
class DeleteReport:
    """What ``delete_bars`` removed from a store file."""

    path: Path
    deleted: int
    first: pd.Timestamp
    last: pd.Timestamp
    remaining: int
    written: bool = True


def store_path(symbol: str, timeframe: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The file holding ``symbol`` at ``timeframe``; validates both (DataError)."""
    check_symbol(symbol)
    parse_timeframe(timeframe)
    return settings.data_dir(data_dir) / f"{symbol}_{timeframe}.csv"


def missing_series(
    symbols: Sequence[str],
    timeframes: Sequence[str],
    data_dir: str | os.PathLike[str] | None = None,
) -> list[str]:
    """The ``"SYMBOL TIMEFRAME"`` pairs the store holds no file for, in request order."""
    return [
        f"{symbol} {timeframe}"
        for symbol in symbols
        for timeframe in timeframes
        if not store_path(symbol, timeframe, data_dir).is_file()
    ]


def read_store_file(path: Path, timeframe: str | None = None) -> pd.DataFrame:
    """All bars of one store file, validated; DataError names the file (and line) on any problem."""
    _check_is_file(path)
    return _read_rows(path, timeframe)


_NUMBERS = dict.fromkeys(OHLCV_COLUMNS, "float64")


def _read_rows(
    path: Path, timeframe: str | None, skip: int = 0, rows: int | None = None
) -> pd.DataFrame:
    """Rows ``skip`` .. ``skip + rows`` of a store file as checked bars.

    The numbers are parsed as floats in one pass; only when a cell is not a number at all is the
    file read again as text, to name the cell and its line.
    """
    window: dict[str, Any] = {"nrows": rows}
    if skip:
        # An integer skip is done by the tokenizer; a range of rows to skip is checked row by row.
        with open(path, encoding="utf-8") as stream:
            names = stream.readline().rstrip("\r\n").split(",")
        window.update(skiprows=skip + 1, header=None, names=names)
    try:
        try:
            frame = pd.read_csv(path, index_col=0, dtype=_NUMBERS, **window)
        except ValueError:
            frame = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False, **window)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable bar file ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from exc
    return _parse_rows(frame, path, timeframe, first_line=skip + 2)


def _check_is_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a bar file")
    if not path.is_file():
        raise DataError(
            f"{path} does not exist; run 'ktrdr data sample' or 'ktrdr data import' first"
        )


def _parse_rows(
    frame: pd.DataFrame, path: Path, timeframe: str | None, first_line: int
) -> pd.DataFrame:
    """Rows as read (floats, or text when a cell is not a number) into checked bars;
    ``first_line`` is the file line of row 0."""
    if frame.empty:
        raise DataError(f"{path}: no bars; re-import the data")
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    try:
        index = pd.to_datetime(frame.index, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: unparseable timestamps ({exc})") from exc
    values = {}
    for column in OHLCV_COLUMNS:
        cells = frame[column]
        numbers = (
            cells.to_numpy(dtype="float64")
            if cells.dtype == "float64"
            else pd.to_numeric(cells, errors="coerce").to_numpy(dtype="float64")
        )
        bad = ~np.isfinite(numbers)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}, line {first + first_line}: {column} is "
                f"{shorten(frame[column].iloc[first], 40)!r}, not a finite number "
                f"({int(bad.sum())} such cell(s)); fix or re-import the file"
            )
        values[column] = numbers
    bars = pd.DataFrame(values, index=pd.DatetimeIndex(index, name="timestamp"))
    return check_ohlcv(bars, source=str(path), timeframe=timeframe)


def _first_and_last_stamps(path: Path) -> tuple[str, str] | None:
    """The first and last timestamps of a store file as text, from its first and last lines."""
    try:
        with open(path, "rb") as stream:
            stream.readline()
            first = stream.readline()
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 4096))
            tail = stream.read().rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    except OSError:
        return None
    stamps = (first.split(b",", 1)[0], tail.split(b",", 1)[0])
    if not all(stamp.endswith(b"+00:00") for stamp in stamps):
        return None
    return stamps[0].decode("ascii", "replace"), stamps[1].decode("ascii", "replace")


def _read_window(
    path: Path, timeframe: str, start: pd.Timestamp, end_exclusive: pd.Timestamp, history: int
) -> tuple[pd.DataFrame, int] | None:
    """The bars from ``history`` rows before ``start`` to ``end_exclusive``, and how many of them
    precede ``start``, reading only those rows; None when the file is not in the store's own
    sorted UTC layout (then the caller reads it whole, which reports what is wrong).

    Reading one year out of twenty otherwise parses and checks all twenty.
    """
    ends = _first_and_last_stamps(path)
    if ends is not None and ends[0] >= start.isoformat() and ends[1] < end_exclusive.isoformat():
        return None  # the range covers the whole file: read it in one pass
    try:
        stamps = pd.read_csv(path, usecols=[0], dtype=str, keep_default_na=False).iloc[:, 0]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return None
    text = stamps.to_numpy(dtype=str)
    # The store writes "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00", which sorts as text like in time; the
    # rows read are checked again as bars (order, spacing) once parsed.
    utc = len(text) > 0 and text[0].endswith("+00:00") and text[-1].endswith("+00:00")
    if not utc or (text[1:] <= text[:-1]).any():
        return None
    first = int(np.searchsorted(text, start.strftime("%Y-%m-%dT%H:%M:%S"), side="left"))
    stop = int(np.searchsorted(text, end_exclusive.strftime("%Y-%m-%dT%H:%M:%S"), side="left"))
    low = max(0, first - max(0, history))
    if stop <= first:
        return pd.DataFrame(), 0
    return _read_rows(path, timeframe, skip=low, rows=stop - low), first - low


def load_bars(
    symbol: str,
    timeframe: str,
    start_date: str | pd.Timestamp | None = None,
    end_date: str | pd.Timestamp | None = None,
    *,
    history_bars: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    max_gap: str | pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Bars opening on the inclusive UTC days [start_date, end_date], plus up to ``history_bars``
    stored bars before start_date (for indicator warm-up).

    History never reaches back across a gap (see ``ktrdr.data.gaps``): bars before a gap are not
    warm-up for bars after it. Gaps inside the range are logged as a warning. A range the store
    covers only in part loads what exists and logs the actual first and last bar. Raises DataError
    when the file is missing or nothing lies in the range.
    """
    path = store_path(symbol, timeframe, data_dir)
    if start_date is None and end_date is None:
        return read_store_file(path, timeframe)
    _check_is_file(path)
    start, end_exclusive = check_date_range(
        start_date if start_date is not None else EARLIEST_BAR,
        end_date if end_date is not None else LATEST_BAR - pd.Timedelta(days=1),
    )
    window = _read_window(path, timeframe, start, end_exclusive, history_bars)
    if window is not None and len(window[0]):
        bars, first = window
    else:
        bars = read_store_file(path, timeframe)
        first = int(bars.index.searchsorted(start, side="left"))
    stop = int(bars.index.searchsorted(end_exclusive, side="left"))
    if stop <= first:
        everything = read_store_file(path, timeframe)
        raise DataError(
            f"no {symbol} {timeframe} bars from {start.date()} to "
            f"{(end_exclusive - pd.Timedelta(days=1)).date()}; the store ({path}) holds "
            f"{everything.index[0]} to {everything.index[-1]}"
        )
    starts = gap_starts(bars.index, timeframe, max_gap)
    before = starts[starts <= first]
    segment_start = int(before[-1]) if len(before) else 0
    history_start = max(segment_start, first - max(0, history_bars))
    if segment_start > 0 and segment_start > first - max(0, history_bars):
        logger.warning(
            "%s %s: only %d of %d history bars before %s; the bars before %s lie across a gap "
            "and are not used as warm-up",
            symbol,
            timeframe,
            first - history_start,
            history_bars,
            start.date(),
            bars.index[segment_start],
        )
    selected = bars.iloc[history_start:stop]
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
            first - history_start,
        )
    inside = find_gaps(in_range, timeframe, max_gap)
    if inside:
        logger.warning(
            "%s %s: %d gap(s) inside %s..%s: %s; indicators restart and no label or lag window "
            "crosses a gap",
            symbol,
            timeframe,
            len(inside),
            start.date(),
            last_day.date(),
            describe_gaps(inside),
        )
    return selected.copy()


def write_bars(
    symbol: str,
    timeframe: str,
    bars: pd.DataFrame,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    replace: bool = False,
    replace_range: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    dry_run: bool = False,
) -> WriteReport:
    """Merge ``bars`` into the store file under its lock, atomically.

    A bar that exists with different values is a DataError unless ``replace``. With ``replace``
    the new bars replace the stored ones over their whole range, first to last bar: a stored bar
    inside it that the new bars do not hold goes too (``removed``); for bars found shifted, the
    range reaches as far as their shifted copies, so a re-import with a corrected time zone
    leaves none of them behind. ``replace_range`` (first, last) widens that range to cover it:
    an import that left bars of its file out (Sunday stubs) replaces over the file's range, so
    a stored copy of what it left out goes too. New bars whose values match stored bars at
    other times (the same bars stamped in another zone) are a DataError that says by how much,
    unless ``replace``. The merged file must still have the timeframe's spacing. ``dry_run`` runs
    every check and writes nothing. Nothing is written when the call raises.
    """
    path = store_path(symbol, timeframe, data_dir)
    incoming = check_ohlcv(
        bars[list(OHLCV_COLUMNS)].astype("float64"), f"{symbol} {timeframe}", timeframe
    )
    check_store_resolution(pd.DatetimeIndex(incoming.index), f"{symbol} {timeframe}")
    lock = lock_path_for(path)
    if dry_run and not lock.parent.is_dir():
        return _merge(path, timeframe, incoming, replace, replace_range, dry_run=True)
    try:
        with exclusive_lock(lock):
            return _merge(path, timeframe, incoming, replace, replace_range, dry_run=dry_run)
    except OSError as exc:
        where = exc.filename or path.parent
        raise DataError(
            f"cannot write the bar store at {where} ({exc.strerror or exc}); check that "
            "--data-dir (or KTRDR_DATA_DIR) is a writable folder"
        ) from exc


def _merge(
    path: Path,
    timeframe: str,
    incoming: pd.DataFrame,
    replace: bool,
    replace_range: tuple[pd.Timestamp, pd.Timestamp] | None,
    *,
    dry_run: bool,
) -> WriteReport:
    added, replaced, unchanged, removed = len(incoming), 0, 0, 0
    conflicts: pd.Index = pd.DatetimeIndex([], tz="UTC")
    offsets: tuple[pd.Timedelta, ...] = ()
    if path.exists():
        existing = read_store_file(path, timeframe)
        offsets = stored_offsets(existing, incoming)
        first, last = incoming.index[0], incoming.index[-1]
        if replace_range is not None:
            first, last = min(first, replace_range[0]), max(last, replace_range[1])
        if offsets:  # the shifted copies reach past the new bars' range by the shift
            zero = pd.Timedelta(0)
            first, last = first - max(*offsets, zero), last - min(*offsets, zero)
        if offsets and not replace:
            raise DataError(
                f"the new bars are the bars already in {path} moved by "
                f"{describe_offsets(offsets)}: the store holds them stamped in another time "
                "zone. If the new times are right, "
                f"pass --replace to replace the stored bars from {first} to {last} with them "
                "(or 'ktrdr data delete' the old ones first); otherwise check --tz"
            )
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
        kept = existing.drop(index=common)
        if replace:
            inside = (kept.index >= first) & (kept.index <= last)
            removed = int(inside.sum())
            kept = kept[~inside]
        else:
            clash = alignment_clash(
                pd.DatetimeIndex(existing.index), pd.DatetimeIndex(incoming.index), timeframe
            )
            if clash is not None:
                raise DataError(f"{path}: {clash}")
        merged = pd.concat([kept, incoming]).sort_index()
        check_ohlcv(merged, f"{path} merged with the new bars", timeframe)
    else:
        merged = incoming
    if not dry_run:
        _atomic_write_csv(merged, path)
        logger.info(
            "wrote %s: %d added, %d replaced, %d removed, %d bars in all",
            path,
            added,
            replaced,
            removed,
            len(merged),
        )
    return WriteReport(
        path=path,
        added=added,
        replaced=replaced,
        unchanged=unchanged,
        total=len(merged),
        conflicts=tuple(conflicts),
        written=not dry_run,
        removed=removed,
        offsets=offsets,
    )


# An alignment that opens at least this share of a file's bars is one the file holds.
_ALIGNMENT_SHARE = 0.1


def alignment_clash(
    stored: pd.DatetimeIndex, incoming: pd.DatetimeIndex, timeframe: str
) -> str | None:
    """Why bars would interleave with the stored ones where their ranges overlap, when the
    cause is where they open: both hold bars of the timeframe's spacing there, cut at other
    times of the UTC clock (a resampled 4h bar opens at 00:00, 04:00 ... UTC; a New York
    broker's at 21:00, 01:00 ... in summer and an hour later in winter). None when the overlap
    is too short to tell, or they share an alignment there (a broker's winter and summer bars
    share one of theirs)."""
    step = parse_timeframe(timeframe)
    if step > pd.Timedelta(days=1) or len(stored) == 0 or len(incoming) == 0:
        return None
    first, last = max(stored[0], incoming[0]), min(stored[-1], incoming[-1])
    stored = stored[(stored >= first) & (stored <= last)]
    incoming = incoming[(incoming >= first) & (incoming <= last)]
    if len(stored) < 3 or len(incoming) < 3:
        return None
    for index in (stored, incoming):
        if np.median(np.diff(index.as_unit("ns").asi8)) != step.value:
            return None
    ours, theirs = _alignments(stored, step), _alignments(incoming, step)
    if set(ours) & set(theirs):
        return None
    return (
        f"the stored {timeframe} bars open {_offsets_text(ours)} past each UTC {timeframe} "
        f"boundary and the new ones {_offsets_text(theirs)}: the same timeframe cut at other "
        "times (ktrdr's resampled bars open on UTC boundaries; a broker's may open at 17:00 "
        f"New York time, an hour later in winter) and would interleave from {first} to "
        f"{last}; keep one kind: --replace replaces the stored bars over the new bars' range, "
        "'ktrdr data delete' clears the stored ones first, or import these under another symbol"
    )


def _alignments(index: pd.DatetimeIndex, step: pd.Timedelta) -> list[int]:
    """Offsets (ns) into the timeframe's UTC bins that open a real share of ``index``'s bars,
    most common first."""
    values, counts = np.unique(index.as_unit("ns").asi8 % step.value, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return [int(values[i]) for i in order if counts[i] >= _ALIGNMENT_SHARE * len(index)]


def _offsets_text(offsets: list[int]) -> str:
    shown = [pd.Timedelta(offset, unit="ns") for offset in offsets]
    return " or ".join(
        f"{int(o.total_seconds() // 3600)}:{int(o.total_seconds() % 3600 // 60):02d}" for o in shown
    )


# Time-zone mistakes shift bars by at most 14 hours; a shift is only called one when it
# explains most bars of the overlap, and at least this many.
_MAX_SHIFT = pd.Timedelta(hours=14)
_MIN_SHIFTED = 10


def stored_offsets(existing: pd.DataFrame, incoming: pd.DataFrame) -> tuple[pd.Timedelta, ...]:
    """How far ``incoming`` lies in time from the same bars in ``existing`` when it is those bars
    moved (a file read in another time zone than before): the shift, and the one an hour from
    it where the range crosses a daylight-saving change; empty when the bars that share values
    share their times too, or too few share values at all.

    Bars are the same when their open, high, low and close are equal. Only prices that occur
    once on each side are matched: quiet stretches repeat them, and a file of repeated prices
    would otherwise pair every bar with every other. Shifts count only when they explain most
    of the matches, and more of them than the bars matching in place.
    """
    window = existing[
        (existing.index >= incoming.index[0] - _MAX_SHIFT)
        & (existing.index <= incoming.index[-1] + _MAX_SHIFT)
    ]
    if len(window) < _MIN_SHIFTED:
        return ()
    prices = ["open", "high", "low", "close"]
    left = incoming[prices].rename_axis("new").reset_index()
    right = window[prices].rename_axis("old").reset_index()
    left = left[~left.duplicated(prices, keep=False)]
    right = right[~right.duplicated(prices, keep=False)]
    pairs = left.merge(right, on=prices)
    if pairs.empty:
        return ()
    counts = (pairs["new"] - pairs["old"]).value_counts()
    counts = counts[[abs(shift) <= _MAX_SHIFT for shift in counts.index]]
    in_place = int(counts.get(pd.Timedelta(0), 0))
    moved = counts.drop(pd.Timedelta(0), errors="ignore")
    if moved.empty:
        return ()
    top = pd.Timedelta(moved.index[0])
    hour = pd.Timedelta(hours=1)
    shifts = pd.TimedeltaIndex(moved.index)
    near = [
        shift
        for shift, count in zip(shifts, moved.to_numpy(), strict=True)
        if abs(shift - top) <= hour and count * 10 >= int(moved.iloc[0])
    ]
    explained = int(sum(moved[shift] for shift in near))
    if explained < _MIN_SHIFTED or explained <= in_place or explained * 2 < len(pairs):
        return ()
    return tuple(sorted(near))


def describe_offsets(offsets: tuple[pd.Timedelta, ...]) -> str:
    """``WriteReport.offsets`` in words: "+4 or +5 hour(s)"."""
    return " or ".join(f"{offset / pd.Timedelta(hours=1):+g}" for offset in offsets) + " hour(s)"


def delete_bars(
    symbol: str,
    timeframe: str,
    start_date: str | pd.Timestamp | None = None,
    end_date: str | pd.Timestamp | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> DeleteReport:
    """Remove the bars opening on the inclusive UTC days [start_date, end_date] (all of them
    without dates) from the store file, under its lock; the file goes when no bar is left.

    Raises DataError when the file is missing or no bar lies in the range (nothing is changed).
    """
    path = store_path(symbol, timeframe, data_dir)
    _check_is_file(path)
    start, end_exclusive = check_date_range(
        start_date if start_date is not None else EARLIEST_BAR,
        end_date if end_date is not None else LATEST_BAR - pd.Timedelta(days=1),
    )
    try:
        with exclusive_lock(lock_path_for(path)):
            bars = read_store_file(path, timeframe)
            doomed = (bars.index >= start) & (bars.index < end_exclusive)
            if not doomed.any():
                raise DataError(
                    f"no {symbol} {timeframe} bars from {start.date()} to "
                    f"{(end_exclusive - pd.Timedelta(days=1)).date()} in {path} (it holds "
                    f"{bars.index[0]} to {bars.index[-1]}); nothing was deleted"
                )
            gone, kept = bars.index[doomed], bars[~doomed]
            if not dry_run:
                if kept.empty:
                    path.unlink()
                else:
                    _atomic_write_csv(kept, path)
    except OSError as exc:
        raise DataError(
            f"cannot change the bar store at {exc.filename or path} ({exc.strerror or exc}); "
            "check that --data-dir (or KTRDR_DATA_DIR) is a writable folder"
        ) from exc
    logger.info("deleted %d bars %s..%s from %s", len(gone), gone[0], gone[-1], path)
    return DeleteReport(path, len(gone), gone[0], gone[-1], len(kept), written=not dry_run)


def check_store_resolution(index: pd.DatetimeIndex, source: str) -> None:
    """Bar times must be whole microseconds, the finest the store file keeps.

    A finer time would be written cut to microseconds, so the bars read back (and merged with
    on the next import) would not be the bars written. Raises DataError naming the first one.
    """
    finer = finer_than_microseconds(index)
    if finer.any():
        first = index[int(np.flatnonzero(finer)[0])]
        raise DataError(
            f"{source}: {int(finer.sum())} bar time(s) finer than a microsecond (first: {first}); "
            "the store keeps microseconds: floor them with index.floor('us')"
        )


def _atomic_write_csv(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    out.index = _iso_stamps(pd.DatetimeIndex(frame.index))
    atomic_write(path, out.to_csv)


def _iso_stamps(index: pd.DatetimeIndex) -> pd.Index:
    """ISO 8601 UTC stamps with the offset, in one vectorised call; microseconds only if used."""
    utc = index.tz_convert("UTC")
    fmt = (
        "%Y-%m-%dT%H:%M:%S.%f+00:00" if (utc.microsecond != 0).any() else "%Y-%m-%dT%H:%M:%S+00:00"
    )
    return pd.Index(utc.strftime(fmt), name="timestamp")


def list_store(
    data_dir: str | os.PathLike[str] | None = None, max_gap: str | pd.Timedelta | None = None
) -> list[StoreEntry]:
    """Every store file under ``data_dir`` with its range and gaps, sorted by symbol, timeframe.

    Files that do not follow the naming scheme are skipped; an unreadable one is listed with its
    ``error`` instead of hiding the others.
    """
    folder = settings.data_dir(data_dir)
    entries: list[StoreEntry] = []
    if not folder.is_dir():
        return entries
    for path in sorted(folder.glob("*_*.csv")):
        symbol, _, timeframe = path.stem.rpartition("_")
        if timeframe not in TIMEFRAMES or not symbol:
            continue
        try:
            bars = read_store_file(path, timeframe)
        except DataError as exc:
            entries.append(StoreEntry(symbol, timeframe, path, error=str(exc)))
            continue
        entries.append(
            StoreEntry(
                symbol,
                timeframe,
                path,
                len(bars),
                bars.index[0],
                bars.index[-1],
                tuple(find_gaps(bars.index, timeframe, max_gap)),
            )
        )
    entries.sort(key=lambda e: (e.symbol, TIMEFRAMES[e.timeframe]))
    return entries
