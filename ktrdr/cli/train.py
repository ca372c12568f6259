"""``ktrdr train``: train a strategy with a live display, Ctrl-C to cancel.
See docs/architecture.md: settings and errors.

Training runs in a worker thread; this thread draws snapshots of the progress manager. Progress
and logs go to stderr, so with --json stdout carries exactly one JSON document. Without a
terminal there is no bar, only a log line at most every few seconds.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import (
    TRAINING_STEPS,
    GenericProgressManager,
    ProgressSnapshot,
    render_time,
    render_training_message,
)
from ktrdr.cli.options import DataDirOption, ModelsDirOption
from ktrdr.cli.output import emit_json, minute, stderr, stdout
from ktrdr.cli.signals import CTRL_C_EXIT, describe_interrupt, wait_through_interrupts
from ktrdr.cli.strategies import parse_overrides
from ktrdr.errors import CancellationError, StrategyConfigError
from ktrdr.neural.classes import CLASS_NAMES

SAVE_STEP = 10  # "Saving model": the first step that writes anything

PLAIN_LOG_SECONDS = 5.0


def _split_list(value: str | None, option: str) -> list[str] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise StrategyConfigError(f"{option} is empty; give a comma-separated list")
    return items


def train(
    strategy: Annotated[Path, typer.Argument(help="Strategy YAML file.")],
    start: Annotated[str, typer.Option(help="First day of the training range (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last day, inclusive (YYYY-MM-DD).")],
    symbols: Annotated[
        str | None,
        typer.Option(help="Comma-separated symbols (default: the strategy's training_data)."),
    ] = None,
    timeframes: Annotated[
        str | None,
        typer.Option(help="Comma-separated timeframes, e.g. 1h,4h (default: the strategy's)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override training.epochs.", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Override training.seed.", min=0)] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any key, e.g. --set training.batch_size=64."),
    ] = None,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="Torch's thread count (default: $KTRDR_TORCH_THREADS, else chosen from the "
            "model and batch size).",
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="local, host (on the training host service; the model is saved here) or auto "
            "(default: $TRAINING_DEFAULT_MODE, else local).",
        ),
    ] = None,
    host_url: Annotated[
        str | None,
        typer.Option(
            "--host-url",
            help="Training host for --mode host (default: $TRAINING_HOST_SERVICE_URL, else "
            "http://127.0.0.1:5002).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train a strategy on stored bars (here, or on the training host), save the model and print
    its results."""
    from ktrdr.runs.entry import run_training
    from ktrdr.runs.execution_mode import ExecutionModeSelector
    from ktrdr.training.run_spec import build_run_spec

    changes = parse_overrides(overrides)
    if epochs is not None:
        changes["training.epochs"] = epochs
    if seed is not None:
        changes["training.seed"] = seed
    spec = build_run_spec(
        strategy,
        _split_list(symbols, "--symbols"),
        _split_list(timeframes, "--timeframes"),
        start,
        end,
        overrides=changes,
        threads=threads,
        data_dir=data_dir,
        models_dir=models_dir,
    )

    choice = ExecutionModeSelector(mode, host_url).select(mode)
    if choice.warning:
        stderr.print(f"Warning: {choice.warning}")

    token = ThreadingCancellationToken()
    manager = GenericProgressManager()
    outcome: dict[str, Any] = {}
    # Completion is signalled by an Event, not Thread.join: on CPython before 3.13 a join that
    # Ctrl-C interrupts can later return while the thread still runs.
    finished = threading.Event()

    def work() -> None:
        try:
            outcome["result"] = run_training(
                spec,
                choice.mode,
                host_url=host_url,
                cancellation_token=token,
                progress_manager=manager,
            )
        except BaseException as exc:  # handed to the main thread, which reports it
            outcome["error"] = exc
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="ktrdr-train", daemon=True)
    where = f" on the host {choice_url(host_url)}" if choice.mode == "host" else ""
    stderr.print(
        f"Training {spec.name} on {','.join(spec.symbols)} "
        f"{','.join(spec.timeframes)} from {start} to {end}{where}"
    )
    worker.start()
    try:
        if stderr.is_terminal:
            _live(finished, manager)
        else:
            _plain(finished, manager)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (ktrdr.cli.signals)
        signal_name, exit_code = describe_interrupt(interrupt)
        token.cancel(f"Cancelled by {signal_name}")
        stderr.print(f"Cancelling... ({signal_name} again to quit at once)")
        _wait_for_the_save(finished, manager)
        if "result" in outcome:  # it finished before the cancel landed
            stderr.print("Training had already finished; the model was saved.")
    else:
        exit_code = CTRL_C_EXIT
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, CancellationError):
            cancelled = CancellationError(f"{error}; nothing was saved")
            cancelled.exit_code = exit_code
            raise cancelled from None
        raise error
    result = outcome["result"]
    if as_json:
        emit_json(result)
    else:
        _print_results(result)


def choice_url(host_url: str | None) -> str:
    from ktrdr import settings

    return settings.host_service_url(host_url)


def _wait_for_the_save(finished: threading.Event, manager: GenericProgressManager) -> None:
    """Wait for the run to stop; a second interrupt quits at once, except during the save.

    Nothing is written before step 10, and the token is cancelled, so a run that has not reached
    step 10 never will: quitting then leaves nothing. A run inside step 10 is finishing a save
    that takes a moment; quitting then could leave a complete version behind a message saying
    nothing was saved, so it is waited for.
    """
    wait_through_interrupts(
        finished,
        lambda: manager.snapshot().step_number < SAVE_STEP,
        lambda: stderr.print("The model is being saved; waiting for the save to finish."),
    )


def _plain(finished: threading.Event, manager: GenericProgressManager) -> None:
    last_line, last_time = "", 0.0
    while not finished.wait(timeout=0.2):
        snapshot = manager.snapshot()
        line = render_training_message(snapshot)
        step_changed = line.split(" · ")[0] != last_line.split(" · ")[0]
        if line and (step_changed or time.monotonic() - last_time >= PLAIN_LOG_SECONDS):
            _plain_line(snapshot)
            last_line, last_time = line, time.monotonic()
    final = manager.snapshot()
    if render_training_message(final) != last_line:
        _plain_line(final)


def _plain_line(snapshot: ProgressSnapshot) -> None:
    line = render_training_message(snapshot)
    timing = render_time(snapshot)
    stderr.print(
        f"[{snapshot.percentage:5.1f}%] {line}{_metrics_text(snapshot)}"
        + (f" · {timing}" if timing else ""),
        markup=False,
    )


def _live(finished: threading.Event, manager: GenericProgressManager) -> None:
    with Live(
        _render(manager.snapshot()), console=stderr, refresh_per_second=8, transient=False
    ) as live:
        while not finished.wait(timeout=0.125):
            live.update(_render(manager.snapshot()))
        live.update(_render(manager.snapshot()))


def _metrics_text(snapshot: ProgressSnapshot) -> str:
    metrics = snapshot.context.get("metrics") or {}
    parts = []
    for key, label in (
        ("train_loss", "loss"),
        ("train_accuracy", "acc"),
        ("val_loss", "val loss"),
        ("val_accuracy", "val acc"),
    ):
        if key in metrics:
            parts.append(f"{label} {metrics[key]:.4f}")
    return (" · " + " · ".join(parts)) if parts else ""


def _render(snapshot: ProgressSnapshot) -> Group:
    steps = Table.grid(padding=(0, 1))
    for number, name in enumerate(TRAINING_STEPS, start=1):
        if number < snapshot.step_number or snapshot.status == "completed":
            mark = Text("✓", style="green")
        elif number == snapshot.step_number:
            mark = Text("▶", style="yellow")
        else:
            mark = Text("·", style="dim")
        steps.add_row(mark, f"{number:>2}. {name}")
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=100, completed=snapshot.percentage, width=50),
        Text(f"{snapshot.percentage:5.1f}%"),
        Text(render_time(snapshot), style="dim"),
    )
    status = Text(render_training_message(snapshot))
    metrics = Text(_metrics_text(snapshot).removeprefix(" · "), style="cyan")
    return Group(steps, bar, status, metrics)


def _print_results(result: dict[str, Any]) -> None:
    test = result["test_metrics"]
    training = result["training_metrics"]
    metadata = result["metadata"]
    table = Table(title="Test metrics")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("baseline", justify="right")
    table.add_row(
        "accuracy",
        f"{test['accuracy']:.3f}",
        f"{test['baseline_accuracy']:.3f} (always {test['baseline_class']}, training majority)",
    )
    table.add_row(
        "",
        "",
        f"{test['test_majority_baseline_accuracy']:.3f} (always {test['test_majority_class']}, "
        "test majority)",
    )
    table.add_row("p-value vs better baseline", f"{test['p_value']:.3g}", "")
    for key in ("precision", "recall", "f1_score"):
        table.add_row(f"{key} (macro)", f"{test[key]:.3f}", "")
    for name, values in test["per_class"].items():
        table.add_row(f"recall {name}", f"{values['recall']:.3f}", f"support {values['support']}")
    table.add_row("loss", f"{test['loss']:.4f}", "")
    stdout.print(table)
    stdout.print(_confusion_table(test["confusion_matrix"]))
    per_symbol = metadata.get("per_symbol_test_metrics") or {}
    if per_symbol:
        symbols = Table(title="Per symbol (test split)")
        for column in ("symbol", "rows", "accuracy", "training majority", "test majority", "p"):
            symbols.add_column(column, justify="right")
        for symbol, metrics in per_symbol.items():
            symbols.add_row(
                symbol,
                str(metrics["samples"]),
                f"{metrics['accuracy']:.3f}",
                f"{metrics['baseline_accuracy']:.3f}",
                f"{metrics['test_majority_baseline_accuracy']:.3f}",
                f"{metrics['p_value']:.3g}",
            )
        stdout.print(symbols)
    # Whole at 80 columns: bar times to the minute (UTC, as stored).
    splits = Table(title="Splits", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("split", "first bar (UTC)", "last bar (UTC)", "rows", "BUY/HOLD/SELL"):
        splits.add_column(column, no_wrap=True)
    for name, info in metadata["splits"].items():
        counts = info["class_counts"]
        splits.add_row(
            name,
            minute(info["start"]),
            minute(info["end"]),
            str(info["rows"]),
            f"{counts['BUY']}/{counts['HOLD']}/{counts['SELL']}",
        )
    stdout.print(splits)
    for warning in metadata.get("warnings", []):
        stdout.print(f"Warning: {warning}", markup=False, style="yellow")
    stdout.print(
        f"epochs {training['epochs']} (best {training['best_epoch']}, stopped by "
        f"{training['stopped_by']}) on {metadata['device']} in "
        f"{metadata['duration_seconds']:.1f} s via {metadata['execution_path']}"
    )
    from ktrdr.store.plots import importance_note

    importance = result["feature_importance"]
    note = importance_note(importance, result["test_metrics"])
    if note:
        stdout.print(f"importance: {note}", markup=False, style="yellow")
    else:
        spread = result.get("feature_importance_spread") or {}
        top = sorted(importance.items(), key=lambda item: -item[1])[:5]
        stdout.print(
            "most important (sd over repeats): "
            + ", ".join(
                f"{name} {value:+.3f} ({spread.get(name, 0.0):.3f})" for name, value in top
            ),
            markup=False,
        )
    for line in result.get("verdict", []):
        stdout.print(line, markup=False, style="bold")
    stdout.print(f"model saved: {result['model_path']} ({result['model_id']})", markup=False)


def _confusion_table(matrix: list[list[int]]) -> Table:
    table = Table(title="Confusion matrix (rows true, columns predicted)")
    table.add_column("")
    for name in CLASS_NAMES:
        table.add_column(name, justify="right")
    for name, row in zip(CLASS_NAMES, matrix, strict=True):
        total = sum(row) or 1
        table.add_row(name, *(f"{n} ({n / total:.0%})" for n in row))
    return table
