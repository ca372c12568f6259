"""``ktrdr evaluate STRATEGY --walk-forward``: retrain on rolling windows, test on what follows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ktrdr.cli.options import DataDirOption
from ktrdr.cli.output import emit_json, first_of, stderr, stdout
from ktrdr.errors import StrategyConfigError, TrainingError


def evaluate(
    strategy: Annotated[Path, typer.Argument(help="The strategy file (YAML).")],
    start: Annotated[str, typer.Option(help="First day of the whole range (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last day, inclusive (YYYY-MM-DD).")],
    walk_forward: Annotated[
        bool, typer.Option("--walk-forward", help="Walk-forward evaluation (the only kind yet).")
    ] = False,
    train: Annotated[str, typer.Option("--train", help="Training window, e.g. 6M, 12W.")] = "6M",
    test: Annotated[str, typer.Option("--test", help="Test period after it, e.g. 1M.")] = "1M",
    step: Annotated[str, typer.Option("--step", help="How far each fold moves.")] = "1M",
    anchored: Annotated[
        bool, typer.Option("--anchored", help="Training always starts at --start and grows.")
    ] = False,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: the strategy's).")
    ] = None,
    timeframes: Annotated[
        str | None, typer.Option(help="Comma-separated timeframes (default: the strategy's).")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override any key, e.g. training.epochs=5.")
    ] = None,
    data_dir: DataDirOption = None,
    output_dir: Annotated[
        Path,
        typer.Option("--output-dir", help="Where walkforward/{name}_{n}/ goes."),
    ] = Path("walkforward"),
    max_parallel: Annotated[
        int, typer.Option("--max-parallel", min=1, help="Folds trained at once (processes).")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Walk-forward evaluation: each fold trains on its window and is tested on the period
    after it; prints a table per fold and a summary, writes walkforward.json and .png."""
    from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
    from ktrdr.cli.strategies import parse_overrides
    from ktrdr.evaluate.walk_forward import plan_folds
    from ktrdr.evaluate.walk_forward import walk_forward as run_walk_forward
    from ktrdr.fileio import atomic_write, atomic_write_bytes, new_numbered_folder
    from ktrdr.store.plots import render_walk_forward
    from ktrdr.training.run_spec import build_run_spec

    if not walk_forward:
        raise StrategyConfigError("ktrdr evaluate needs --walk-forward (the only evaluation yet)")
    # The whole range's spec: the one check of the strategy, the symbols and the dates.
    whole = build_run_spec(
        strategy,
        _split(symbols),
        _split(timeframes),
        start,
        end,
        overrides=parse_overrides(overrides),
        save=False,
        data_dir=data_dir,
    )
    config = whole.strategy
    chosen_symbols, chosen_timeframes = list(whole.symbols), list(whole.timeframes)
    folds = plan_folds(start, end, train, test, step, anchored)
    stderr.print(
        f"Walk-forward {config['name']}: {len(folds)} fold(s), train {train}"
        f"{' anchored' if anchored else ''}, test {test}, step {step}"
    )
    token = ThreadingCancellationToken()
    try:
        result = run_walk_forward(
            config,
            chosen_symbols,
            chosen_timeframes,
            folds,
            data_dir=None if data_dir is None else str(data_dir),
            max_parallel=max_parallel,
            cancellation_token=token,
            on_fold=lambda row: stderr.print(_fold_line(row)),
        )
    except KeyboardInterrupt:
        token.cancel("Cancelled")
        raise
    folder = new_numbered_folder(output_dir, config["name"])
    failure = _failed_folds(result["folds"], folder / "walkforward.json")
    document = {
        "strategy": config["name"],
        "symbols": chosen_symbols,
        "timeframes": chosen_timeframes,
        "start": start,
        "end": end,
        "train": train,
        "test": test,
        "step": step,
        "anchored": anchored,
        "success": failure is None,
        **result,
    }
    if failure is not None:
        document["error"] = {"type": TrainingError.__name__, "message": failure}
    every_fold_failed = result["summary"]["failed_folds"] == len(result["folds"])
    # A reader watching the folder sees each file whole or not at all.
    atomic_write(
        folder / "walkforward.json", lambda s: s.write(json.dumps(document, indent=2) + "\n")
    )
    if not every_fold_failed:
        # No chart of nothing: with every fold failed the JSON holds their errors only.
        atomic_write_bytes(folder / "walkforward.png", render_walk_forward(result["folds"]))
    if as_json:
        emit_json({**document, "folder": str(folder)})
        if failure is not None:
            raise typer.Exit(TrainingError.exit_code)
        return
    stdout.print(_table(result["folds"]))
    for row in result["folds"]:
        if row.get("error"):
            stdout.print(f"fold {row['fold']} failed: {row['error']}")
    summary = result["summary"]
    if summary["mean_accuracy"] is not None:
        stdout.print(
            f"mean accuracy {summary['mean_accuracy']:.3f}"
            + (f" ± {summary['std_accuracy']:.3f}" if summary["std_accuracy"] is not None else "")
            + f" against a mean better baseline of {summary['mean_better_baseline']:.3f}; "
            f"{summary['share_beating_baseline']:.0%} of folds beat it significantly (p < 0.05), "
            f"{summary['share_above_baseline']:.0%} are above it"
        )
    if summary["collapsed_folds"] or summary["near_collapse_folds"]:
        stdout.print(collapse_note(summary))
    if every_fold_failed:
        stdout.print(f"written: {folder / 'walkforward.json'} (the folds' errors; no result)")
    else:
        stdout.print(f"written: {folder / 'walkforward.json'} and walkforward.png")
    if failure is not None:
        raise TrainingError(failure)


def collapse_note(summary: dict[str, Any]) -> str:
    """The summary's warning that folds' models answered (almost) one class only."""
    done = summary["folds"] - summary["failed_folds"]
    parts = []
    if summary["collapsed_folds"]:
        classes = ", ".join(summary["collapsed_classes"])
        parts.append(
            f"{summary['collapsed_folds']} of {done} fold(s) predicted one class only ({classes})"
        )
    if summary["near_collapse_folds"]:
        parts.append(f"{summary['near_collapse_folds']} of {done} predicted 95% or more one class")
    return (
        "Warning: "
        + "; ".join(parts)
        + ": those models collapsed to (nearly) a constant and learned nothing usable"
    )


def _failed_folds(rows: list[dict[str, Any]], written: Path) -> str | None:
    """The message for a walk-forward in which folds failed (exit 1), None when none did: a
    summary over the folds that completed is not the evaluation that was asked for."""
    failed = [row for row in rows if row.get("error")]
    if not failed:
        return None
    shown = first_of([str(row["fold"]) for row in failed])
    scope = "every fold" if len(failed) == len(rows) else f"{len(failed)} of {len(rows)} fold(s)"
    return (
        f"{scope} failed (fold {shown}; fold {failed[0]['fold']}: {failed[0]['error']}); "
        f"each fold's result or error is in {written}"
    )


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def _fold_line(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"fold {row['fold']}: failed ({row['error']})"
    return (
        f"fold {row['fold']}: test {row['test_start']}..{row['test_end']} "
        f"accuracy {row['accuracy']:.3f} (better baseline {row['better_baseline_accuracy']:.3f})"
    )


def _table(rows: list[dict[str, Any]]) -> Table:
    """One line per fold, readable at 80 columns (piped too); a failed fold reads "failed" and
    its error is printed under the table, where it may wrap."""
    table = Table(
        title="walk-forward folds",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("fold", "train from", "test from"):
        table.add_column(column, no_wrap=True)
    for column in ("rows", "acc.", "train maj.", "test maj.", "p"):
        table.add_column(column, no_wrap=True, justify="right")
    for row in rows:
        if row.get("error"):
            table.add_row(str(row["fold"]), row["train_start"], row["test_start"], "", "failed")
            continue
        table.add_row(
            str(row["fold"]),
            row["train_start"],
            row["test_start"],
            str(row["test_rows"]),
            f"{row['accuracy']:.3f}" + (" *" if row["beats_baseline"] else ""),
            f"{row['baseline_accuracy']:.3f}",
            f"{row['test_majority_baseline_accuracy']:.3f}",
            f"{row['p_value']:.3g}",
        )
    return table
