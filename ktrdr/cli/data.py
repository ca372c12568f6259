"""``ktrdr data``: fill, inspect and extend the local bar store."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich import box
from rich.table import Table

from ktrdr.cli.options import DataDirOption, JsonOption
from ktrdr.cli.output import emit_json, minute, stderr, stdout
from ktrdr.data.gaps import Gap, describe_gaps, find_gaps, parse_max_gap
from ktrdr.data.importer import import_csv
from ktrdr.data.sample import write_sample_data
from ktrdr.data.store import (
    delete_bars,
    describe_offsets,
    list_store,
    load_bars,
    write_bars,
)
from ktrdr.data.timeframes import resample_with_report

app = typer.Typer(help="Fill, inspect and extend the local bar store.", no_args_is_help=True)

MaxGapOption = Annotated[
    str | None,
    typer.Option(
        "--max-gap",
        help="Longest stretch without bars that is not a gap, e.g. 7d "
        "(default: the longer of 4 days and 10 bars).",
    ),
]


def _gap_records(gaps: tuple[Gap, ...] | list[Gap]) -> list[dict[str, str]]:
    return [
        {"after": str(g.last_before), "resumes": str(g.first_after), "missing": str(g.missing)}
        for g in gaps
    ]


SymbolArgument = Annotated[str, typer.Argument(help="Symbol, e.g. EURUSD.")]
TimeframeArgument = Annotated[str, typer.Argument(help="Timeframe, e.g. 1h.")]
StartOption = Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD).")]
EndOption = Annotated[str | None, typer.Option(help="Last day, inclusive (YYYY-MM-DD).")]


class StampKind(StrEnum):
    open = "open"
    close = "close"


@app.command("sample")
def sample(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Write the sample bars: EURUSD 1h (2017), GOOGL 1d (2009-2018), EURUSD 4h and 1d."""
    report = write_sample_data(data_dir)
    rows = [
        (r.symbol, r.timeframe, r.written.path if r.written else None, r.bars, r.first, r.last)
        for r in report.imported
    ]
    for symbol, timeframe, written in report.resampled:
        entry = load_bars(symbol, timeframe, data_dir=data_dir)
        rows.append(
            (symbol, timeframe, written.path, written.total, entry.index[0], entry.index[-1])
        )
    if as_json:
        emit_json(
            {
                "success": True,
                "files": [
                    {
                        "symbol": s,
                        "timeframe": t,
                        "path": str(p),
                        "bars": n,
                        "first": str(f),
                        "last": str(last),
                    }
                    for s, t, p, n, f, last in rows
                ],
            }
        )
        return
    table = Table(title="Sample data written")
    for column in ("symbol", "timeframe", "bars", "first bar", "last bar", "file"):
        table.add_column(column)
    for s, t, p, n, f, last in rows:
        table.add_row(s, t, str(n), str(f), str(last), str(p))
    stdout.print(table)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV file to import.")],
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Symbol to store it under.")],
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Bar timeframe, e.g. 1h.")],
    tz: Annotated[str, typer.Option(help="Time zone of naive timestamps.")] = "UTC",
    timestamps: Annotated[
        StampKind, typer.Option(help="Whether the file stamps bars with their open or close time.")
    ] = StampKind.open,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace the stored bars over the file's whole range (first to last bar).",
        ),
    ] = False,
    drop_invalid: Annotated[
        bool,
        typer.Option("--drop-invalid", help="Skip rows that cannot be bars instead of failing."),
    ] = False,
    drop_weekend_stubs: Annotated[
        bool,
        typer.Option(
            "--drop-weekend-stubs",
            help="Leave out daily bars that hold only Sunday evening (as ktrdr's 1d bars do).",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Parse and check only.")] = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import an OHLCV CSV (ISO, dd.mm.yyyy, MetaTrader, HistData, epoch...) into the store."""
    report = import_csv(
        file,
        symbol,
        timeframe,
        data_dir=data_dir,
        tz=tz,
        timestamps=timestamps.value,
        replace=replace,
        drop_invalid=drop_invalid,
        drop_weekend_stubs=drop_weekend_stubs,
        dry_run=dry_run,
    )
    document: dict[str, Any] = {
        "success": True,
        "source": str(report.source),
        "symbol": report.symbol,
        "timeframe": report.timeframe,
        "rows_read": report.rows_read,
        "bars": report.bars,
        "first": str(report.first),
        "last": str(report.last),
        "timestamp_format": report.timestamp_format,
        "duplicates_dropped": report.duplicates_dropped,
        "dropped_columns": list(report.dropped_columns),
        "invalid_rows_dropped": report.invalid_rows_dropped,
        "weekend_stubs_dropped": report.weekend_stubs_dropped,
        "notes": list(report.notes),
        "dry_run": dry_run,
    }
    if report.written:
        document.update(
            path=str(report.written.path),
            added=report.written.added,
            replaced=report.written.replaced,
            removed=report.written.removed,
            offset_hours=[o / pd.Timedelta(hours=1) for o in report.written.offsets],
            total_in_store=report.written.total,
            conflicts=[str(t) for t in report.written.conflicts[:100]],
        )
    if as_json:
        emit_json(document)
        return
    verb = "Checked" if dry_run else "Imported"
    stdout.print(
        f"{verb} {report.bars} {symbol} {timeframe} bars from {file}: "
        f"{report.first} .. {report.last} (timestamps read as {report.timestamp_format})"
    )
    if report.duplicates_dropped:
        stdout.print(f"  dropped {report.duplicates_dropped} exact duplicate row(s)")
    if report.dropped_columns:
        stdout.print(f"  ignored column(s): {', '.join(report.dropped_columns)}")
    for reason, count in report.invalid_rows_dropped.items():
        stdout.print(f"  skipped {count} row(s): {reason}")
    if report.weekend_stubs_dropped:
        stdout.print(f"  left out {report.weekend_stubs_dropped} Sunday stub bar(s)")
    for note in report.notes:
        stdout.print(f"  note: {note}")
    if report.written:
        would = "" if report.written.written else "would be "
        written = report.written
        removed = f"{written.removed} {would}removed, " if written.removed else ""
        stdout.print(
            f"  {written.path}: {written.added} {would}added, {written.replaced} {would}replaced, "
            f"{removed}{written.total} bars in all",
            markup=False,
        )
        if written.offsets:
            stdout.print(
                f"  note: the stored bars were these bars stamped "
                f"{describe_offsets(written.offsets)} away (another "
                "time zone); the file's range replaced them",
                markup=False,
            )


@app.command("delete")
def delete(
    symbol: SymbolArgument,
    timeframe: TimeframeArgument,
    start: StartOption = None,
    end: EndOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; change nothing.")
    ] = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a symbol's bars at one timeframe: those on the days --start..--end, or all."""
    report = delete_bars(symbol, timeframe, start, end, data_dir=data_dir, dry_run=dry_run)
    if as_json:
        emit_json(
            {
                "success": True,
                "path": str(report.path),
                "deleted": report.deleted,
                "first": str(report.first),
                "last": str(report.last),
                "remaining": report.remaining,
                "dry_run": dry_run,
            }
        )
        return
    verb = "Would delete" if dry_run else "Deleted"
    left = (
        f"{report.remaining} bars left"
        if report.remaining
        else ("the file would go" if dry_run else "the file is removed")
    )
    stdout.print(
        f"{verb} {report.deleted} {symbol} {timeframe} bars ({report.first} .. {report.last}) "
        f"from {report.path}; {left}",
        markup=False,
    )


@app.command("list")
def list_(
    data_dir: DataDirOption = None, max_gap: MaxGapOption = None, as_json: JsonOption = False
) -> None:
    """List the store's files with their bar counts, ranges and gaps."""
    entries = list_store(data_dir, parse_max_gap(max_gap, "--max-gap"))
    if as_json:
        emit_json(
            [
                {
                    "symbol": e.symbol,
                    "timeframe": e.timeframe,
                    "bars": e.bars,
                    "first": str(e.first) if e.first is not None else None,
                    "last": str(e.last) if e.last is not None else None,
                    "gaps": _gap_records(e.gaps),
                    "path": str(e.path),
                    "error": e.error,
                }
                for e in entries
            ]
        )
        return
    if not entries:
        stdout.print("The store is empty; run 'ktrdr data sample' or 'ktrdr data import'.")
        return
    table = Table(title="Bar store")
    for column in ("symbol", "timeframe", "bars", "first bar", "last bar", "gaps"):
        table.add_column(column)
    for e in entries:
        if e.error is not None:
            table.add_row(e.symbol, e.timeframe, "-", "unreadable", "", "")
            continue
        gaps = str(len(e.gaps)) if e.gaps else ""
        table.add_row(e.symbol, e.timeframe, str(e.bars), str(e.first), str(e.last), gaps)
    stdout.print(table)
    for e in entries:
        if e.gaps:
            stdout.print(f"{e.symbol} {e.timeframe} gaps: {describe_gaps(list(e.gaps))}")
    for e in entries:
        if e.error is not None:
            stderr.print(f"Warning: {e.error}", markup=False)


@app.command("show")
def show(
    symbol: SymbolArgument,
    timeframe: TimeframeArgument,
    start: StartOption = None,
    end: EndOption = None,
    rows: Annotated[int, typer.Option(help="Bars shown at each end.", min=0)] = 3,
    data_dir: DataDirOption = None,
    max_gap: MaxGapOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a symbol's range, bar count, gaps and its first and last bars."""
    limit = parse_max_gap(max_gap, "--max-gap")
    bars = load_bars(symbol, timeframe, start, end, data_dir=data_dir, max_gap=limit)
    gaps = find_gaps(bars.index, timeframe, limit)
    if as_json:
        emit_json(
            {
                "symbol": symbol,
                "timeframe": timeframe,
                "bars": len(bars),
                "first": str(bars.index[0]),
                "last": str(bars.index[-1]),
                "zero_volume_bars": int((bars["volume"] == 0).sum()),
                "gaps": _gap_records(gaps),
            }
        )
        return
    stdout.print(f"{symbol} {timeframe}: {len(bars)} bars, {bars.index[0]} .. {bars.index[-1]}")
    if gaps:
        stdout.print(f"{len(gaps)} gap(s): {describe_gaps(gaps, shown=10)}")
    if rows:
        cut = len(bars) > 2 * rows
        # The first and last bars; a row of "…" between says that bars were left out.
        parts = [bars.iloc[:rows], bars.iloc[-rows:]] if cut else [bars]
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("timestamp (open, UTC)", "open", "high", "low", "close", "volume"):
            table.add_column(column, justify="right", no_wrap=True)
        for number, part in enumerate(parts):
            if number:
                table.add_row(f"… {len(bars) - 2 * rows} bars …", *("…",) * 5)
            for stamp, (_, bar) in zip(pd.DatetimeIndex(part.index), part.iterrows(), strict=True):
                table.add_row(
                    minute(stamp.isoformat()),
                    *(f"{bar[c]:.10g}" for c in ("open", "high", "low", "close", "volume")),
                )
        stdout.print(table)


@app.command("resample")
def resample(
    symbol: SymbolArgument,
    source: Annotated[str, typer.Option("--from", help="Stored timeframe to read.")],
    target: Annotated[str, typer.Option("--to", help="Longer timeframe to write.")],
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite differing bars.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Aggregate stored bars to a longer timeframe and store the result.

    Stub bins (under a quarter of the usual source bars) and a last bin the source bars do not
    yet close are left out, not stored as full bars.
    """
    bars, dropped = resample_with_report(
        load_bars(symbol, source, data_dir=data_dir), source, target
    )
    written = write_bars(symbol, target, bars, data_dir=data_dir, replace=replace)
    stdout.print(
        f"Wrote {len(bars)} {symbol} {target} bars to {written.path} "
        f"({written.added} added, {written.replaced} replaced)",
        markup=False,
    )
    for reason, count in dropped.items():
        stdout.print(f"  left out {count} {reason} bin(s)", markup=False)
