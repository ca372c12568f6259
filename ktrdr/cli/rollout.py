"""``ktrdr rollout status|gate``: the executor's rollout, read from the runs ledger."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ktrdr.cli.options import DataDirOption, JsonOption
from ktrdr.cli.output import emit_json, stdout
from ktrdr.errors import StrategyConfigError

app = typer.Typer(help="Watch and gate the rollout of TrainingExecutor.", no_args_is_help=True)

Since = Annotated[
    str,
    typer.Option(
        "--since",
        help="The window: runs that ended in the last 7d, 36h, ..., or since a moment "
        "(2026-12-07T16:40:00Z).",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="The operations database (default: $KTRDR_DATABASE_URL, else "
        "SQLite in the data folder).",
    ),
]
_NAMES = {"training_executor": "executor", "strategy_trainer": "reference"}


def _rows(since: str, data_dir: Path | None, database_url: str | None) -> list[dict[str, Any]]:
    from ktrdr.database import database_url as url_of
    from ktrdr.runs.ledger import RunLedger

    ledger = RunLedger(url_of(database_url, data_dir))
    try:
        return ledger.rows(since=_start_of(since))
    except RuntimeError as exc:
        raise StrategyConfigError(f"cannot read the runs ledger: {exc}") from exc
    finally:
        ledger.close()


@app.command("status")
def status(
    since: Since = "7d",
    data_dir: DataDirOption = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOption = False,
) -> None:
    """Per path over the window: runs, failures, durations and their ratio, cancellation
    latency, progress interval, and the accuracy difference on matched runs."""
    from ktrdr.runs.gates import accuracy_difference, duration_ratio, path_figures, shadow_figures

    rows = _rows(since, data_dir, database_url)
    figures = path_figures(rows)
    ratio, interval = duration_ratio(
        figures["training_executor"]["durations"], figures["strategy_trainer"]["durations"]
    )
    difference, matched = accuracy_difference(rows)
    shadows = shadow_figures(rows)
    document = {
        "since": since,
        "rows": len(rows),
        "paths": {
            path: {k: v for k, v in f.items() if k != "durations"} for path, f in figures.items()
        },
        "duration_ratio": ratio,
        "duration_ratio_interval": interval,
        "accuracy_difference": difference,
        "matched_runs": matched,
        "shadows": shadows,
    }
    if as_json:
        emit_json(document)
        return
    table = Table(
        title=f"Rollout, runs that ended {_window_words(since)}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for column in ("path", "runs", "failed", "errors", "median s", "cancel p95", "progress"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for path, f in figures.items():
        table.add_row(
            _NAMES[path],
            str(f["runs"]),
            str(f["failed"]),
            _share(f["error_rate"]),
            _number(f["median_duration_s"], "{:.2f}"),
            _number(f["cancel_latency_p95_s"], "{:.0f} ms", 1000),
            _number(f["progress_interval_s"], "{:.2f} s"),
        )
    stdout.print(table)
    if ratio is not None and interval is not None:
        stdout.print(
            f"duration ratio (executor/reference, medians): {ratio:.3f} "
            f"(95% interval {interval[0]:.3f}-{interval[1]:.3f})"
        )
    else:
        stdout.print("duration ratio: not yet (no completed runs on a path)")
    stdout.print(
        f"accuracy difference on matched runs: {difference:+.4f} ({matched} run key(s))"
        if difference is not None
        else "accuracy difference: no run key completed on both paths"
    )
    line = (
        f"shadow runs: {shadows['shadows']} ({shadows['matched']} matched, "
        f"{shadows['mismatched']} mismatched, {shadows['unfinished']} did not finish)"
    )
    if shadows["first_difference"]:
        line += f"; first mismatch: {shadows['first_difference']}"
    stdout.print(line, markup=False)


@app.command("gate")
def gate(
    stage: Annotated[str, typer.Option("--stage", help="canary, expanded, full or cleanup.")],
    since: Since = "7d",
    thresholds: Annotated[
        Path | None, typer.Option("--thresholds", help="A YAML file of thresholds to use.")
    ] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOption = False,
) -> None:
    """PASS (exit 0), FAIL (exit 1) or INCONCLUSIVE (exit 3: too few runs to tell) for the
    stage's gates, each with its figure and threshold."""
    from ktrdr.runs.gates import EXIT_CODES, evaluate_gates, load_thresholds

    limits = load_thresholds(thresholds)
    report = evaluate_gates(_rows(since, data_dir, database_url), stage, limits)
    if as_json:
        emit_json(report.to_dict())
    else:
        table = Table(
            title=f"{stage} gate: {report.verdict}",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            collapse_padding=True,
        )
        for column in ("gate", "figure", "limit", "verdict"):
            table.add_column(column, justify="left" if column == "gate" else "right")
        for item in report.gates:
            table.add_row(
                item.name + (f"\n  {item.detail}" if item.detail else ""),
                _number(item.figure, "{:.4g}"),
                f"{item.threshold:.4g}",
                item.verdict,
            )
        stdout.print(table)
        stdout.print(f"verdict: {report.verdict}")
    if report.verdict != "PASS":
        raise typer.Exit(EXIT_CODES[report.verdict])


def _window_words(since: str) -> str:
    return f"since {since}" if any(mark in since for mark in "-:T") else f"in the last {since}"


def _start_of(since: str) -> float:
    """The window's start as a Unix time: ``since`` is a duration back from now (``7d``,
    ``36h``, ``90s``) or a moment (ISO 8601, UTC unless it names its zone: a rehearsal's stage
    start). Raises StrategyConfigError naming ``--since`` for anything else, or a moment to come."""
    import pandas as pd

    from ktrdr.data.gaps import parse_max_gap

    if any(mark in since for mark in "-:T"):
        try:
            moment = pd.Timestamp(since)
        except (ValueError, TypeError):
            moment = None
        if moment is not None and moment is not pd.NaT:
            moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
            start = float(moment.timestamp())
            if start > time.time():
                raise StrategyConfigError(f"--since={since[:40]!r} is in the future")
            return start
        raise StrategyConfigError(
            f"--since={since[:40]!r} is neither a duration (7d, 36h) nor a moment "
            "(2026-12-07T16:40:00Z)"
        )
    window = parse_max_gap(since, "--since")
    assert window is not None
    return time.time() - window.total_seconds()


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None, form: str, scale: float = 1.0) -> str:
    return "-" if value is None else form.format(value * scale)
