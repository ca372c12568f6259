"""Import OHLCV bars from the CSV shapes other sources export (docs/architecture.md: bars and time).

Recognised: a header with a timestamp column (ISO 8601, ``dd.mm.yyyy HH:MM:SS.fff`` as Dukascopy
writes, ``yyyy.mm.dd HH:MM`` as MetaTrader writes, ``yyyymmdd HHMMSS`` as HistData writes, epoch
seconds or milliseconds), separate date and time columns, MetaTrader ``<DATE>`` headers, headerless
MetaTrader and HistData exports (comma, semicolon or tab separated), an unnamed index column, and
extra columns such as ``Adj Close`` (dropped and named in the report).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ktrdr.data.sessions import week_open_note, weekend_stub_note, weekend_stubs
from ktrdr.data.store import WriteReport, write_bars
from ktrdr.data.timeframes import parse_timeframe
from ktrdr.data.validation import (
    EARLIEST_BAR,
    LATEST_BAR,
    check_spacing,
    check_symbol,
    finer_than_microseconds,
    invalid_bar_mask,
)
from ktrdr.errors import DataError
from ktrdr.fileio import NotARegularFile, open_regular_file
from ktrdr.messages import shorten

logger = logging.getLogger(__name__)

_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "datetime",
        "date_time",
        "time",
        "gmt_time",
        "local_time",
        "utc_time",
        "time_utc",
        "date",
    ),
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price", "last"),
    "volume": ("volume", "vol", "real_volume", "v", "tickvol", "tick_volume", "volume_ticks"),
}
_DATETIME_FORMATS = (
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
    "%Y%m%d %H%M%S",
    "%Y%m%d",
)
_SHOWN = 5


@dataclass(frozen=True)
class ParsedCsv:
    """A CSV read into bars: UTC open-time index, OHLCV plus ``_line`` (1-based file line)."""

    bars: pd.DataFrame
    timestamp_format: str
    dropped_columns: list[str]
    notes: list[str]


@dataclass(frozen=True)
class ImportReport:
    """What an import read, dropped and wrote."""

    source: Path
    symbol: str
    timeframe: str
    rows_read: int
    bars: int
    first: pd.Timestamp
    last: pd.Timestamp
    timestamp_format: str
    duplicates_dropped: int = 0
    dropped_columns: tuple[str, ...] = ()
    invalid_rows_dropped: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    weekend_stubs_dropped: int = 0
    written: WriteReport | None = None


def import_csv(
    path: str | os.PathLike[str],
    symbol: str,
    timeframe: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    tz: str = "UTC",
    timestamps: Literal["open", "close"] = "open",
    replace: bool = False,
    drop_invalid: bool = False,
    drop_weekend_stubs: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Parse ``path`` into bars and merge them into the store (unless ``dry_run``).

    Naive timestamps are read in ``tz``; ``timestamps="close"`` converts close-stamped bars to open
    times. A note warns when round-the-clock bars open their weeks at an hour of UTC that such
    markets never open at (the file was likely read in the wrong zone). ``replace`` replaces the
    stored bars over the file's whole range (see ``write_bars``). Rows that cannot be bars are
    a DataError listing them, or are dropped and counted with ``drop_invalid``. Daily bars that
    are a Sunday stub (``weekend_stubs``) get a warning, or are dropped and counted with
    ``drop_weekend_stubs``.
    Raises DataError; nothing is written when it does.
    """
    source = Path(path)
    check_symbol(symbol)
    step = parse_timeframe(timeframe)
    if timestamps not in ("open", "close"):
        raise DataError(f"--timestamps {timestamps!r} is not valid; use open or close")
    parsed = parse_csv(source, tz=tz)
    bars = parsed.bars
    if timestamps == "close":
        bars.index = pd.DatetimeIndex(bars.index) - step
    rows_read = len(bars)

    bars = bars.sort_index(kind="stable")
    exact = bars.drop(columns="_line").reset_index().duplicated(keep="first").to_numpy()
    duplicates = int(exact.sum())
    bars = bars[~exact]
    clashing = bars.index.duplicated(keep=False)
    if clashing.any():
        shown = ", ".join(str(t) for t in bars.index[clashing].unique()[:_SHOWN])
        raise DataError(
            f"{source}: {int(clashing.sum())} rows share a timestamp but differ in values "
            f"(at {shown}); remove the conflicting rows"
        )

    dropped_invalid: dict[str, int] = {}
    bad_any = np.zeros(len(bars), dtype=bool)
    problems = []
    for reason, mask in invalid_bar_mask(bars).items():
        if mask.any():
            lines = bars["_line"].to_numpy()[mask]
            shown = ", ".join(str(n) for n in lines[:_SHOWN])
            problems.append(f"{reason}: {int(mask.sum())} row(s) at line {shown}")
            dropped_invalid[reason] = int(mask.sum())
            bad_any |= mask
    if problems and not drop_invalid:
        raise DataError(
            f"{source}: rows that cannot be bars ({'; '.join(problems)}); fix them, or pass "
            "--drop-invalid to import the rest"
        )
    bars = bars[~bad_any].drop(columns="_line")
    if bars.empty:
        raise DataError(f"{source}: no valid bars left to import")
    stubs = weekend_stubs(pd.DatetimeIndex(bars.index), timeframe)
    file_range = (bars.index[0], bars.index[-1])  # what --replace covers, stubs left out or not
    if drop_weekend_stubs and len(stubs):
        bars = bars[~pd.DatetimeIndex(bars.index).isin(stubs)]  # weekday bars remain
    check_spacing(pd.DatetimeIndex(bars.index), timeframe, str(source))
    notes = list(parsed.notes)
    stub_hint = None if drop_weekend_stubs else weekend_stub_note(stubs)
    if stub_hint is not None:
        logger.warning("%s: %s", source, stub_hint)
        notes.append(stub_hint)
    zone_hint = week_open_note(pd.DatetimeIndex(bars.index), timeframe, tz)
    if zone_hint is not None:
        logger.warning("%s: %s", source, zone_hint)
        notes.append(zone_hint)

    # A dry run goes through the same merge checks (conflicts, merged spacing) and writes nothing.
    written = write_bars(
        symbol,
        timeframe,
        bars,
        data_dir=data_dir,
        replace=replace,
        replace_range=file_range,
        dry_run=dry_run,
    )
    result = ImportReport(
        source=source,
        symbol=symbol,
        timeframe=timeframe,
        rows_read=rows_read,
        bars=len(bars),
        first=bars.index[0],
        last=bars.index[-1],
        timestamp_format=parsed.timestamp_format,
        duplicates_dropped=duplicates,
        dropped_columns=tuple(parsed.dropped_columns),
        invalid_rows_dropped=dropped_invalid,
        notes=tuple(notes),
        weekend_stubs_dropped=len(stubs) if drop_weekend_stubs else 0,
        written=written,
    )
    logger.info("imported %d %s %s bars from %s", len(bars), symbol, timeframe, source)
    return result


def parse_csv(source: Path, tz: str = "UTC") -> ParsedCsv:
    """Read one CSV into bars with the detected timestamp format, dropped columns and notes.

    Raises DataError naming the file and the problem.
    """
    try:
        with open_regular_file(source) as stream:
            head = stream.read(_HEADER_BYTES)
    except NotARegularFile as exc:
        if exc.what == "a folder":
            raise DataError(f"{source}: is a folder; give the CSV file to import") from None
        raise DataError(f"{source}: is {exc.what}, not a CSV file; give the file itself") from None
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"{source}: file not found") from None
    except OSError as exc:  # a name too long, a loop of links, no permission
        raise DataError(f"{source}: cannot be read ({exc.strerror})") from None
    if b"\x00" in head:
        raise DataError(f"{source}: holds NUL bytes; a binary file, not a text CSV")
    first_line, newline, _ = head.partition(b"\n")
    if not newline and len(head) == _HEADER_BYTES:
        raise DataError(
            f"{source}: no line break in the first {_HEADER_BYTES // 1024} KiB; not a CSV file"
        )
    try:
        header_text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: not a text CSV file ({exc.reason})") from exc
    if not head.strip():
        raise DataError(f"{source}: the file is empty")
    if not header_text.strip():
        raise DataError(f"{source}: the first line is empty; put the header (or a bar) there")
    delimiter = max((",", ";", "\t"), key=header_text.count)
    has_header = re.search(r"[A-Za-z]", header_text) is not None
    try:
        raw = pd.read_csv(
            source,
            sep=delimiter,
            header=0 if has_header else None,
            dtype=str,
            encoding="utf-8-sig",
            skipinitialspace=True,
            keep_default_na=False,
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{source}: cannot be read as CSV ({shorten(exc)})") from exc
    # Blank lines are kept while reading so that every row knows its line in the file.
    lines = np.arange(len(raw)) + (2 if has_header else 1)
    blank = (raw.fillna("") == "").all(axis=1).to_numpy()
    if blank.any():
        raw, lines = raw[~blank].reset_index(drop=True), lines[~blank]
    if raw.empty:
        raise DataError(f"{source}: a header but no rows")
    notes: list[str] = []
    columns = _headed_columns(raw, source) if has_header else _headerless_columns(raw, source)

    if "time_part" in columns:
        stamp_text = (
            raw[columns["date_part"]].str.strip() + " " + raw[columns["time_part"]].str.strip()
        )
    else:
        stamp_text = raw[columns["timestamp"]].str.strip()
    index, fmt, stamp_notes = _parse_timestamps(stamp_text, source, lines, tz)
    notes.extend(stamp_notes)

    frame = pd.DataFrame(index=index)
    for name in ("open", "high", "low", "close", "volume"):
        if name not in columns:
            frame[name] = 0.0
            notes.append("no volume column; volume set to 0")
            continue
        values = pd.to_numeric(raw[columns[name]].str.strip(), errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            rows = lines[np.flatnonzero(bad)[:_SHOWN]]
            raise DataError(
                f"{source}: column {columns[name]!r} has {int(bad.sum())} non-numeric value(s) "
                f"(line {', '.join(map(str, rows))})"
            )
        frame[name] = values.to_numpy(dtype="float64")
    frame["_line"] = lines
    frame.index.name = "timestamp"
    used = set(columns.values())
    dropped = [str(c) for c in raw.columns if c not in used]
    return ParsedCsv(frame, fmt, dropped, notes)


def _normalise(name: object) -> str:
    text = str(name).strip().strip("<>").strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


def _headed_columns(raw: pd.DataFrame, source: Path) -> dict[str, str]:
    by_name: dict[str, str] = {}
    for column in raw.columns:
        by_name.setdefault(_normalise(column), column)
    columns: dict[str, str] = {}
    for target, aliases in _ALIASES.items():
        if target == "timestamp":
            continue
        for alias in aliases:
            if alias in by_name:
                columns[target] = by_name[alias]
                break
    missing = [c for c in ("open", "high", "low", "close") if c not in columns]
    if missing:
        raise DataError(
            f"{source}: no {', '.join(missing)} column; found {', '.join(map(str, raw.columns))}"
        )
    if "date" in by_name and "time" in by_name:
        columns["date_part"] = by_name["date"]
        columns["time_part"] = by_name["time"]
        return columns
    for alias in _ALIASES["timestamp"]:
        if alias in by_name:
            columns["timestamp"] = by_name[alias]
            return columns
    first = raw.columns[0]
    if str(first).startswith("Unnamed") or not str(first).strip():
        columns["timestamp"] = first
        return columns
    raise DataError(
        f"{source}: no timestamp column; name it timestamp, date or time "
        f"(found {', '.join(map(str, raw.columns))})"
    )


def _headerless_columns(raw: pd.DataFrame, source: Path) -> dict[str, str]:
    width = raw.shape[1]
    names: tuple[str, ...]
    if width == 7:
        names = ("date_part", "time_part", "open", "high", "low", "close", "volume")
    elif width == 6:
        names = ("timestamp", "open", "high", "low", "close", "volume")
    elif width == 5:
        names = ("timestamp", "open", "high", "low", "close")
    else:
        raise DataError(
            f"{source}: {width} columns and no header; expected timestamp,open,high,low,close"
            "[,volume] or MetaTrader's date,time,open,high,low,close,volume"
        )
    return {name: raw.columns[i] for i, name in enumerate(names)}


_SNIFF_ROWS = 1000


def _parsers(text: pd.Series) -> list[tuple[str, Callable[[pd.Series], pd.Series]]]:
    """Candidate timestamp parsers, in order of preference; epoch only for digit-only stamps."""
    parsers: list[tuple[str, Callable[[pd.Series], pd.Series]]] = [
        (fmt, functools.partial(_parse_format, fmt=fmt)) for fmt in _DATETIME_FORMATS
    ]
    parsers.append(("ISO 8601", _parse_iso))
    if text.str.fullmatch(r"\d{9,13}").all():
        unit = "ms" if int(text.iloc[0]) > 10**11 else "s"
        parsers.append((f"epoch {unit}", functools.partial(_parse_epoch, unit=unit)))
    return parsers


def _parse_timestamps(
    text: pd.Series, source: Path, lines: np.ndarray, tz: str
) -> tuple[pd.DatetimeIndex, str, list[str]]:
    if text.eq("").any():
        line = int(lines[np.flatnonzero(text.eq("").to_numpy())[0]])
        raise DataError(f"{source}: empty timestamp at line {line}")
    _check_epoch_units(text, source, lines)
    # Pick the format on the first rows, then parse the whole column once with it.
    sample = text.iloc[:_SNIFF_ROWS]
    best: tuple[int, str, Callable[[pd.Series], pd.Series]] | None = None
    for fmt, parser in _parsers(sample):
        failures = int(parser(sample).isna().sum())
        if best is None or failures < best[0]:
            best = (failures, fmt, parser)
        if failures == 0:
            break
    assert best is not None
    _, fmt, parser = best
    notes: list[str] = []
    with_offset = text.str.contains(_OFFSET, regex=True).to_numpy() if fmt == "ISO 8601" else None
    if with_offset is not None and with_offset.any() and not with_offset.all():
        # Rows with an offset are instants; rows without one are wall times in ``tz``. Reading
        # them together would silently take the naive rows as UTC whatever --tz says.
        parsed = _parse_mixed_offsets(text, with_offset, source, tz)
        notes.append(
            f"{int((~with_offset).sum())} timestamp(s) without a UTC offset read in {tz}; "
            f"{int(with_offset.sum())} with one kept as given"
        )
    else:
        parsed = parser(text)
    failures = int(parsed.isna().sum())
    if failures:
        bad = np.flatnonzero(parsed.isna().to_numpy())
        raise DataError(
            f"{source}: {failures} unparseable timestamp(s), first "
            f"{shorten(text.iloc[bad[0]])!r} at line {lines[bad[0]]}; use ISO 8601 "
            "(2024-01-02T13:00:00Z) or one of the formats "
            "in 'ktrdr data import --help'"
        )
    index = pd.DatetimeIndex(parsed)
    finer = finer_than_microseconds(index)
    if finer.any():
        # The store keeps microseconds; a finer stamp would be cut on writing and then no longer
        # match itself on the next import of the same file.
        index = index.floor("us")
        first = int(np.flatnonzero(finer)[0])
        notes.append(
            f"{int(finer.sum())} timestamp(s) finer than a microsecond floored to microseconds, "
            f"first {shorten(text.iloc[first])!r} at line {lines[first]}"
        )
    if index.tz is None:
        index = _localize(index, tz, source)
    index = index.tz_convert("UTC")
    outside = (index < EARLIEST_BAR) | (index >= LATEST_BAR)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{source}: timestamp {shorten(text.iloc[first])!r} at line {lines[first]} lies "
            f"outside {EARLIEST_BAR.year}-{LATEST_BAR.year - 1}; check the column and its format"
        )
    return index, fmt, notes


_HEADER_BYTES = 64 * 1024


def _check_epoch_units(text: pd.Series, source: Path, lines: np.ndarray) -> None:
    """Epoch stamps must all be seconds (9-10 digits) or all milliseconds (12-13 digits)."""
    digits = text.str.len().to_numpy()
    if not text.str.fullmatch(r"\d{9,13}").all():
        return
    seconds = digits <= 10
    if seconds.any() and not seconds.all():
        odd = np.flatnonzero(seconds != seconds[0])[0]
        raise DataError(
            f"{source}: epoch timestamps mix seconds and milliseconds (line {lines[0]} has "
            f"{digits[0]} digits, line {lines[odd]} has {digits[odd]}); use one unit"
        )


_OFFSET = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def _localize(index: pd.DatetimeIndex, tz: str, source: Path) -> pd.DatetimeIndex:
    try:
        return index.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except Exception as exc:  # pytz/zoneinfo errors differ by pandas version
        raise DataError(
            f"{source}: cannot read naive timestamps in time zone {tz!r} ({exc}); "
            "check --tz, or export the data in UTC"
        ) from exc


def _parse_mixed_offsets(
    text: pd.Series, with_offset: np.ndarray, source: Path, tz: str
) -> pd.Series:
    aware = pd.to_datetime(text[with_offset], format="ISO8601", utc=True, errors="coerce")
    naive = pd.to_datetime(text[~with_offset], format="ISO8601", errors="coerce")
    localized = pd.Series(
        _localize(pd.DatetimeIndex(naive), tz, source).tz_convert("UTC"), index=naive.index
    )
    return pd.concat([aware, localized]).reindex(text.index)


def _parse_format(text: pd.Series, fmt: str) -> pd.Series:
    return pd.to_datetime(text, format=fmt, errors="coerce")


def _parse_epoch(text: pd.Series, unit: str) -> pd.Series:
    numbers = pd.to_numeric(text, errors="coerce")
    scale = 1000 if unit == "ms" else 1_000_000  # to microseconds
    valid = numbers.notna().to_numpy()
    micros = np.where(valid, numbers.fillna(0).to_numpy(dtype="int64") * scale, 0)
    stamps = pd.Series(pd.DatetimeIndex(micros, dtype="datetime64[us, UTC]"), index=text.index)
    return stamps.where(valid)


def _parse_iso(text: pd.Series) -> pd.Series:
    try:
        return pd.to_datetime(text, format="ISO8601", utc=False, errors="coerce")
    except (ValueError, TypeError):
        # Mixed offsets cannot be held naive; read them as instants in UTC.
        return pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
