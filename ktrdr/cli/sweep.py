"""``ktrdr sweep FILE``: many trainings from one sweep file, on local processes or Ray."""

from __future__ import annotations

import collections
import itertools
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.live import Live
from rich.table import Table

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import TRAINING_STEPS
from ktrdr.async_infrastructure.status import STATUSES
from ktrdr.cli.options import DataDirOption, ModelsDirOption
from ktrdr.cli.output import emit_json, first_of, stderr, stdout
from ktrdr.cli.signals import (
    describe_interrupt,
    install_sigterm_handler,
    wait_through_interrupts,
)
from ktrdr.errors import CancellationError, TrainingError
from ktrdr.messages import shorten
from ktrdr.training.verdict import summary_line


def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="The sweep file (YAML).")],
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Run on Ray: 'local' (a Ray on this machine), 'auto' or ray://HOST:PORT. "
            "Default: local worker processes.",
        ),
    ] = None,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="Where sweeps/{name}_{n}/ summaries go.")
    ] = Path("sweeps"),
    yes: Annotated[
        bool, typer.Option("--yes", help="Run a sweep of more than 256 runs without asking.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Train every run of a sweep file, show them live, then rank them (summary.json and
    summary.csv in sweeps/NAME_N/)."""
    from ktrdr.runs.ray_backend import start_ray
    from ktrdr.sweep import load_sweep
    from ktrdr.sweep.plan import plan_runs
    from ktrdr.sweep.runner import RunState
    from ktrdr.sweep.runner import sweep as run_sweep

    spec, base = load_sweep(sweep_file)
    # Every run checked before anything starts; the sweep trains exactly these specs.
    plan = plan_runs(spec, base, confirm=yes, data_dir=data_dir)
    ray_started = False
    if ray_address is not None:
        # Connecting installs Ray's own signal handlers, which end the process on SIGTERM
        # without the clean stop; so connect here, in the main thread, and put ours back.
        ray_started = start_ray(ray_address)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        install_sigterm_handler()
    token = ThreadingCancellationToken()
    latest: list[list[RunState]] = [[]]
    outcome: dict[str, Any] = {}
    finished = threading.Event()
    gate = _SaveGate()

    def work() -> None:
        try:
            outcome["result"] = run_sweep(
                spec_or_path=spec,
                ray_address=ray_address,
                models_dir=models_dir,
                data_dir=data_dir,
                output_dir=output_dir,
                confirm=yes,
                plan=plan,
                cancellation_token=token,
                on_update=lambda states: latest.__setitem__(0, states),
                base=base,
                before_saving=gate.enter_saving,
            )
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            finished.set()

    try:
        where = "local processes" if ray_address is None else f"Ray ({ray_address})"
        stderr.print(
            f"Sweep {spec.name}: {len(plan)} run(s), {spec.max_parallel} at once, on {where}"
        )
        threading.Thread(target=work, name="ktrdr-sweep", daemon=True).start()
        try:
            if stderr.is_terminal:
                with Live(
                    _live_table(latest[0], _live_rows()), console=stderr, refresh_per_second=4
                ) as live:
                    while not finished.wait(0.25):
                        live.update(_live_table(latest[0], _live_rows()))
                    live.update(_live_table(latest[0], _live_rows()))
            else:
                _plain(finished, latest)
        except KeyboardInterrupt as interrupt:
            signal_name, exit_code = describe_interrupt(interrupt)
            token.cancel(f"Cancelled by {signal_name}")
            stderr.print(
                f"Cancelling the sweep ({signal_name}): stopping the running runs... "
                f"({signal_name} again to quit at once, saving nothing)"
            )
            wait_through_interrupts(
                finished,
                gate.abandon,
                lambda: stderr.print(
                    "The sweep is saving its models and summary; waiting for it to finish."
                ),
            )
            result = outcome.get("result")
            # A run without a model has NaN in the frame: count the ids, not what is truthy.
            saved = (
                [] if result is None else [m for m in result.runs["model_id"] if isinstance(m, str)]
            )
            cancelled = CancellationError(
                f"sweep cancelled by {signal_name}; "
                + (f"saved {len(saved)} completed run(s)" if saved else "nothing was saved")
                + ("" if result is None else f"; summary in {result.folder}")
            )
            cancelled.exit_code = exit_code
            raise cancelled from None
        if "error" in outcome:
            raise outcome["error"]
        result = outcome["result"]
        failure = _failed_runs(result.runs, result.folder)
        if as_json:
            if failure is None:
                emit_json(result.summary)
                return
            # One document on stdout, the summary itself, saying that the sweep failed.
            emit_json(
                {
                    **result.summary,
                    "success": False,
                    "error": {"type": "TrainingError", "message": failure},
                }
            )
            raise typer.Exit(TrainingError.exit_code)
        stdout.print(_ranked_table(result))
        chosen = chosen_line(result.summary)
        if chosen is not None:
            stdout.print(chosen)
        stdout.print(f"summary: {result.folder / 'summary.json'} and summary.csv")
        if failure is not None:
            raise TrainingError(failure)
    finally:
        if ray_started:
            import ray

            ray.shutdown()


def _failed_runs(runs: Any, folder: Path) -> str | None:
    """The message for a sweep in which runs failed (exit 1), None when none did: a sweep that
    lost runs must not look like one that did not, to a script or a scheduler."""
    failed = runs[runs["status"] == "failed"]
    if failed.empty:
        return None
    first = failed.iloc[0]
    shown = first_of([str(run_id) for run_id in failed["run_id"]])
    return (
        f"{len(failed)} of {len(runs)} run(s) failed ({shown}; {first['run_id']}: "
        f"{shorten(str(first['error']), 120)}); the results of every run are in "
        f"{folder / 'summary.json'}"
    )


class _SaveGate:
    """Who wins between the sweep starting to save and the user quitting: exactly one does.

    Once the sweep has begun writing models and the summary it is let finish (a quit then
    would leave versions that no summary lists); before that, a second interrupt quits at
    once and the sweep writes nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.saving = False
        self.abandoned = False

    def enter_saving(self) -> bool:
        with self._lock:
            self.saving = not self.abandoned
            return self.saving

    def abandon(self) -> bool:
        with self._lock:
            self.abandoned = not self.saving
            return self.abandoned


def _plain(finished: threading.Event, latest: list[list[Any]]) -> None:
    """Report changes (``_plain_reporter``) four times a second until ``finished``, then once."""
    report = _plain_reporter(latest)
    while not finished.wait(0.25):
        report()
    report()


def _plain_reporter(latest: list[list[Any]]) -> Callable[[], None]:
    """A report of what changed since its last call, one line per change of a run's status or
    step (logs and pipes get no live table).

    A run waiting its turn says nothing (the first line gave the count), and the runs a
    cancel ends before they started are one line, not one each: a sweep of 10,000 runs
    must not print 10,000 lines to say that nothing happened to them.
    """
    shown: dict[str, tuple[str, int]] = {}

    def report() -> None:
        never_started = 0
        for state in latest[0]:
            run_id = state.run.run_id
            snapshot = state.snapshot or {}
            step = int(snapshot.get("step_number") or 0) if state.status == "running" else 0
            previous, shown[run_id] = shown.get(run_id), (state.status, step)
            before = "pending" if previous is None else previous[0]
            if state.status == "cancelled" and before == "pending":
                never_started += 1
            elif state.status != before:
                stderr.print(f"{run_id} {state.status} {_overrides_text(state.run.grid_values)}")
            if step and (previous is None or previous[1] != step):
                total = len(TRAINING_STEPS)
                stderr.print(f"{run_id} step {step}/{total}: {snapshot.get('step_name', '')}")
        if never_started:
            stderr.print(f"{never_started} run(s) cancelled before they started")

    return report


def _text(value: Any) -> str:
    """A cell's text: empty for a missing value (None, or NaN from the frame)."""
    return value if isinstance(value, str) else ""


def _overrides_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items()) or "-"


def _live_table(states: list[Any], max_rows: int) -> Table:
    """The live view: every running run, then the latest to end, then the next to start, at
    most ``max_rows`` rows in run order, under a count of the runs in each status.

    Drawn four times a second, so its cost must not grow with the sweep: a table of every
    run of a 10,000-run sweep made the terminal, not the runs, the slow part.
    """
    counts = collections.Counter(state.status for state in states)
    running = [s for s in states if s.status == "running"]
    ended = sorted(
        (s for s in states if s.ended is not None and s.status != "running"),
        key=lambda s: s.ended,
        reverse=True,
    )
    pending = (s for s in states if s.status == "pending")
    chosen = running[:max_rows]
    chosen += ended[: max_rows - len(chosen)]
    chosen += list(itertools.islice(pending, max(0, max_rows - len(chosen))))
    chosen.sort(key=lambda s: s.run.index)
    caption = ", ".join(f"{counts[name]} {name}" for name in STATUSES if counts[name])
    hidden = len(states) - len(chosen)
    table = Table(
        "run",
        "grid values",
        "status",
        "epoch",
        "val acc",
        title="sweep",
        caption=caption + (f" ({hidden} not shown)" if hidden else ""),
    )
    for state in chosen:
        context = (state.snapshot or {}).get("context") or {}
        metrics = context.get("metrics") or {}
        epoch = context.get("epoch")
        table.add_row(
            state.run.run_id,
            _overrides_text(state.run.grid_values),
            state.status,
            "" if epoch is None else f"{epoch}/{context.get('total_epochs', '?')}",
            "" if "val_accuracy" not in metrics else f"{metrics['val_accuracy']:.3f}",
        )
    return table


def _live_rows() -> int:
    """How many runs the live table shows: what fits the terminal under its title, header,
    caption and the lines above it."""
    return max(3, stderr.size.height - 8)


def _ranked_table(result: Any) -> Table:
    """The runs, best first by the validation metric the sweep ranks by; the test columns
    report and never rank. Whole at 80 columns: the symbols, timeframes and grid values share
    one column that wraps, a failed run's error goes under its row."""
    table = Table(
        title=f"{result.name}: ranked by {result.best_by} on validation ({result.backend}, "
        f"{result.duration_s:.1f} s)",
        caption="edge: accuracy less the better constant baseline of the same split",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("run", no_wrap=True)
    table.add_column("symbols · timeframes · grid", overflow="fold", ratio=1)
    ranked_by = result.best_by.removeprefix("val_")
    for column in (f"val {ranked_by}", *(() if ranked_by == "edge" else ("val edge",))):
        table.add_column(column, justify="right", no_wrap=True)
    for column in ("test acc", "test edge", "p"):
        table.add_column(column, justify="right", no_wrap=True)

    def number(value: Any, digits: str = ".3f") -> str:
        return "" if value is None or value != value else format(value, digits)

    for rank, row in enumerate(result.runs.to_dict("records"), start=1):
        what = " · ".join(
            part
            for part in (row["symbols"], row["timeframes"], _overrides_text(row["grid"]))
            if part
        )
        if row["status"] != "completed" or _text(row["error"]):
            what += f"\n{row['status']}: {_text(row['error'])}".rstrip(": ")
        values = [number(row[result.best_by], _RANK_FORMATS[ranked_by])]
        if ranked_by != "edge":
            values.append(number(row["val_edge"], _RANK_FORMATS["edge"]))
        table.add_row(
            str(rank),
            row["run_id"],
            what,
            *values,
            number(row["test_accuracy"]),
            number(row["test_edge"], "+.3f"),
            number(row["p_value"], ".3g"),
        )
    return table


_RANK_FORMATS = {"edge": "+.3f", "accuracy": ".3f", "loss": ".4f"}


def chosen_line(summary: dict[str, Any]) -> str | None:
    """The chosen run, what chose it, and its test verdict reported after the choice."""
    chosen = summary.get("chosen")
    if not chosen:
        return None
    value = chosen["value"]
    line = (
        f"chosen: {chosen['run_id']} by {chosen['best_by']} "
        f"{'' if value is None else format(value, '.3f')} on validation"
        + (f", saved as {chosen['model_id']}" if chosen.get("model_id") else "")
    )
    verdict = chosen.get("test_verdict")
    if verdict:
        line += f"; on the test split, after the choice: {summary_line(verdict)}"
    return line
