"""Run a sweep: plan, train every run (local processes or Ray), save in run order, summarise."""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from ktrdr.async_infrastructure.cancellation import CancellationToken
from ktrdr.async_infrastructure.status import TERMINAL
from ktrdr.errors import CancellationError, ModelStorageError
from ktrdr.fileio import atomic_write, new_numbered_folder
from ktrdr.runs import RunBackend, RunOutcome, RunPool, run_all
from ktrdr.runs.ledger import open_ledger
from ktrdr.runs.ray_backend import RayBackend
from ktrdr.store.artifact_checks import Expected
from ktrdr.store.model_artifact import ModelArtifact
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.received import ArtifactRefused, receive_artifact
from ktrdr.sweep.plan import SweepRun, plan_runs
from ktrdr.sweep.spec import BEST_BY, SweepSpec, load_sweep

logger = logging.getLogger(__name__)

# How long a running run has to stop by itself once the sweep is cancelled.
CANCEL_GRACE_S = 10.0

SUMMARY_COLUMNS = (
    "run_id",
    "status",
    "symbols",
    "timeframes",
    "grid",
    "overrides",
    "seed",
    "test_accuracy",
    "baseline_accuracy",
    "test_majority_baseline_accuracy",
    "beats_baseline",
    "p_value",
    "test_edge",
    "test_f1_score",
    "test_loss",
    "val_accuracy",
    "val_baseline_accuracy",
    "val_edge",
    "val_loss",
    "best_epoch",
    "epochs",
    "model_id",
    "duration_s",
    "peak_mib",
    "error",
)


@dataclass
class RunState:
    """What the driver knows of one run while the sweep goes on."""

    run: SweepRun
    status: str = "pending"
    snapshot: dict[str, Any] | None = None
    started: float | None = None
    ended: float | None = None
    outcome: RunOutcome | None = None
    # The run's model, checked on receipt (a completed run only).
    artifact: ModelArtifact | None = None
    model_id: str | None = None
    save_error: str | None = None


@dataclass
class SweepResult:
    """A finished (or cancelled) sweep: one row per run, ranked by ``best_by``."""

    name: str
    folder: Path
    runs: pd.DataFrame
    best_run_id: str | None
    best_by: str
    cancelled: bool
    backend: str
    duration_s: float
    summary: dict[str, Any] = field(default_factory=dict)


def sweep(
    spec_or_path: str | Path | dict[str, Any] | SweepSpec,
    ray_address: str | None = None,
    *,
    models_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    output_dir: str | Path = "sweeps",
    confirm: bool = False,
    cancellation_token: CancellationToken | None = None,
    on_update: Callable[[list[RunState]], None] | None = None,
    base: Path | None = None,
    plan: list[SweepRun] | None = None,
    before_saving: Callable[[], bool] | None = None,
) -> SweepResult:
    """Train every run of a sweep file; returns the ranked runs (``SweepResult.runs``).

    ``plan`` is ``plan_runs``' answer for this spec when the caller has it already (the
    command line shows it first). Runs go to local worker processes, or to Ray at
    ``ray_address`` (``local``, ``auto``, ``ray://host:port``). A relative ``strategy`` path
    starts at the sweep file's folder (at ``base`` for a SweepSpec or dict). Only this process
    writes the model store, in run order. A cancelled sweep stops every running run through
    its token and starts no other; it saves the completed runs only with ``save: all``.
    ``before_saving`` is asked once every run has ended, before any model or the summary is
    written: False (the caller is quitting) ends the sweep with CancellationError, nothing
    written; True commits it to writing everything.
    Raises StrategyConfigError for a bad sweep file (naming the run and key) before any run
    starts.
    """
    if isinstance(spec_or_path, SweepSpec):
        spec, base = spec_or_path, base or Path.cwd()
    else:
        spec, found = load_sweep(spec_or_path)
        base = base or found
    if plan is None:
        plan = plan_runs(spec, base, confirm, data_dir)
    states = {run.run_id: RunState(run) for run in plan}
    # One list for every update: the states change in place, the list never does, so copying
    # it per update (thousands of updates for a big sweep, each of thousands) bought nothing.
    ordered = list(states.values())
    requests = [run.spec for run in plan]
    lock = threading.Lock()

    def listener(run_id: str, status: str, snapshot: dict[str, Any] | None) -> None:
        with lock:
            state = states[run_id]
            if state.status in TERMINAL:
                return
            if status == "running" and state.started is None:
                state.started = time.monotonic()
            if status != "running":
                state.ended = time.monotonic()
            state.status = status
            if snapshot is not None:
                state.snapshot = snapshot
        if on_update is not None:
            on_update(ordered)

    if spec.save != "none":  # fail before hours of training, not after them
        storage = ModelStorage(models_dir)
        for name, symbols, timeframes in dict.fromkeys(
            (run.spec.name, run.spec.symbols, run.spec.timeframes) for run in plan
        ):
            storage.check_can_save(name, list(symbols), list(timeframes))
    backend = "local" if ray_address is None else f"ray ({ray_address})"
    logger.info("sweep %s: %d run(s) on %s", spec.name, len(plan), backend)
    started = time.monotonic()
    runner: RunBackend = (
        RunPool(spec.max_parallel, warm=False)
        if ray_address is None
        else RayBackend(ray_address, spec.max_parallel)
    )
    try:
        outcomes = run_all(
            runner,
            requests,
            cancellation_token,
            listener,
            CANCEL_GRACE_S,
            ledger=open_ledger(None if data_dir is None else str(data_dir)),
        )
    finally:
        runner.shutdown(grace_s=0)
    for run_id, outcome in outcomes.items():
        state = states[run_id]
        state.outcome, state.artifact = _received(spec.name, state.run, outcome)
        state.status = state.outcome.status
    cancelled = cancellation_token is not None and cancellation_token.is_cancelled()
    if before_saving is not None and not before_saving():
        raise CancellationError(f"sweep {spec.name} abandoned before saving; nothing was written")
    folder = new_numbered_folder(Path(output_dir), spec.name)
    best = _best(list(states.values()), spec.best_by)
    _save_models(spec, folder, list(states.values()), best, models_dir, cancelled)
    duration = time.monotonic() - started
    rows = [_row(state) for state in states.values()]
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    higher = BEST_BY[spec.best_by]
    frame = frame.sort_values(
        [spec.best_by, "run_id"], ascending=[not higher, True], na_position="last"
    ).reset_index(drop=True)
    summary = {
        "name": spec.name,
        "folder": str(folder),
        "strategy": spec.strategy,
        "start": spec.start,
        "end": spec.end,
        "backend": backend,
        "save": spec.save,
        "best_by": spec.best_by,
        "best_run_id": None if best is None else best.run.run_id,
        # The chosen run's test figures, reported once the choice is made on validation.
        "chosen": None if best is None else _chosen(best, spec.best_by),
        "cancelled": cancelled,
        "duration_s": round(duration, 3),
        # The frame holds NaN where a run has no value; JSON has null for that, not NaN.
        "runs": [
            {str(k): None if _missing(v) else v for k, v in row.items()}
            for row in frame.to_dict("records")
        ],
    }
    _write_summary(folder, summary, frame)
    if on_update is not None:
        on_update(ordered)
    unsaved = [s.run.run_id for s in states.values() if s.save_error]
    if unsaved:
        raise ModelStorageError(
            f"sweep {spec.name}: the model(s) of {', '.join(unsaved)} could not be saved; "
            f"every run's result is in {folder / 'summary.json'}"
        )
    return SweepResult(
        name=spec.name,
        folder=folder,
        runs=frame,
        best_run_id=None if best is None else best.run.run_id,
        best_by=spec.best_by,
        cancelled=cancelled,
        backend=backend,
        duration_s=duration,
        summary=summary,
    )


def _chosen(best: RunState, best_by: str) -> dict[str, Any]:
    """What the summary says of the chosen run: the metric that chose it, and its test
    verdict (never used to choose)."""
    from ktrdr.training.verdict import stored_verdict

    result = best.outcome.result if best.outcome is not None else None
    return {
        "run_id": best.run.run_id,
        "best_by": best_by,
        "value": metric(best, best_by),
        "model_id": best.model_id,
        "test_verdict": stored_verdict((result or {}).get("test_metrics")),
    }


def metric(state: RunState, name: str) -> float | None:
    """One of BEST_BY's metrics of a completed run, else None."""
    if state.outcome is None or state.outcome.result is None:
        return None
    result = state.outcome.result
    if name == "val_edge":
        accuracy = result["training_metrics"].get("best_val_accuracy")
        baseline = validation_baseline(result)
        return None if accuracy is None or baseline is None else float(accuracy) - baseline
    value = result["training_metrics"].get(f"best_{name}")
    return None if value is None else float(value)


def validation_baseline(result: Mapping[str, Any]) -> float | None:
    """The better constant answer's accuracy on the run's validation split, None when the
    result lacks its class counts. Of always answering the training split's majority and
    always answering the validation split's own, the second is never worse: the validation
    majority's share."""
    splits = (result.get("metadata") or {}).get("splits") or {}
    validation = (splits.get("validation") or {}).get("class_counts") or {}
    total = sum(validation.values())
    return max(validation.values()) / total if total else None


def _best(states: list[RunState], best_by: str) -> RunState | None:
    done = [s for s in states if s.status == "completed" and metric(s, best_by) is not None]
    if not done:
        return None
    sign = 1.0 if BEST_BY[best_by] else -1.0
    # Ties go to the earlier run, so the choice does not depend on finishing order.
    return max(done, key=lambda s: (sign * float(metric(s, best_by) or 0.0), -s.run.index))


def _received(
    name: str, run: SweepRun, outcome: RunOutcome
) -> tuple[RunOutcome, ModelArtifact | None]:
    """A completed run's outcome and its checked model; a run whose model does not pass the
    checks on receipt (``receive_artifact``) becomes a failed run that says why."""
    if outcome.status != "completed":
        return outcome, None
    try:
        if outcome.artifact is None:
            raise ArtifactRefused("the run sent no model")
        expected = Expected.of(run.spec.name, run.spec.symbols, run.spec.timeframes)
        return outcome, receive_artifact(outcome.artifact, expected)
    except ArtifactRefused as exc:
        error = f"run {run.run_id}: its model was refused on receipt ({exc}); nothing saved for it"
        logger.error("sweep %s: %s", name, error)
        failed = RunOutcome(
            "failed",
            error_type="ModelStorageError",
            error=error,
            peak_rss_bytes=outcome.peak_rss_bytes,
        )
        return failed, None


def _save_models(
    spec: SweepSpec,
    folder: Path,
    states: list[RunState],
    best: RunState | None,
    models_dir: str | Path | None,
    cancelled: bool,
) -> None:
    if spec.save == "none" or (cancelled and spec.save == "best"):
        return
    chosen = [s for s in states if s.status == "completed"] if spec.save == "all" else []
    if spec.save == "best" and best is not None:
        chosen = [best]
    storage = ModelStorage(models_dir)
    for state in sorted(chosen, key=lambda s: s.run.index):  # run order: stable versions
        artifact = state.artifact
        assert artifact is not None  # every completed run's model was checked on receipt
        artifact.manifest["overrides"] = dict(state.run.overrides)
        artifact.manifest["sweep"] = {"name": folder.name, "run_id": state.run.run_id}
        try:
            saved = storage.save_model(artifact)
        except ModelStorageError as exc:
            # One failed save never loses the others, nor the summary of every run.
            state.save_error = f"its model could not be saved: {exc}"
            logger.error("sweep %s: run %s: %s", spec.name, state.run.run_id, state.save_error)
            continue
        state.model_id = saved.model_id


def _row(state: RunState) -> dict[str, Any]:
    result = state.outcome.result if state.outcome is not None else None
    test = (result or {}).get("test_metrics") or {}
    training = (result or {}).get("training_metrics") or {}
    val_baseline = None if result is None else validation_baseline(result)
    duration = (
        None
        if state.started is None or state.ended is None
        else round(state.ended - state.started, 3)
    )
    return {
        "run_id": state.run.run_id,
        "status": state.status,
        "symbols": ",".join(state.run.symbols),
        "timeframes": ",".join(state.run.timeframes),
        "grid": dict(state.run.grid_values),
        "overrides": dict(state.run.overrides),
        "seed": state.run.seed,
        "test_accuracy": test.get("accuracy"),
        "baseline_accuracy": test.get("baseline_accuracy"),
        "test_majority_baseline_accuracy": test.get("test_majority_baseline_accuracy"),
        "beats_baseline": test.get("beats_baseline"),
        "p_value": test.get("p_value"),
        "test_edge": None
        if test.get("accuracy") is None or test.get("better_baseline_accuracy") is None
        else test["accuracy"] - test["better_baseline_accuracy"],
        "test_f1_score": test.get("f1_score"),
        "test_loss": test.get("loss"),
        "val_accuracy": training.get("best_val_accuracy"),
        "val_baseline_accuracy": val_baseline,
        "val_edge": None
        if val_baseline is None or training.get("best_val_accuracy") is None
        else float(training["best_val_accuracy"]) - val_baseline,
        "val_loss": training.get("best_val_loss"),
        "best_epoch": training.get("best_epoch"),
        "epochs": training.get("epochs"),
        "model_id": state.model_id,
        "duration_s": duration,
        "peak_mib": None
        if state.outcome is None or state.outcome.peak_rss_bytes is None
        else round(state.outcome.peak_rss_bytes / 2**20, 1),
        "error": state.save_error or (None if state.outcome is None else state.outcome.error),
    }


def _write_summary(folder: Path, summary: dict[str, Any], frame: pd.DataFrame) -> None:
    def write_json(stream: IO[str]) -> None:
        json.dump(summary, stream, indent=2, default=str, allow_nan=False)
        stream.write("\n")

    def write_csv(stream: IO[str]) -> None:
        writer = csv.DictWriter(stream, fieldnames=list(SUMMARY_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in frame.to_dict("records"):
            writer.writerow(
                {
                    str(key): json.dumps(value) if key in ("grid", "overrides") else _cell(value)
                    for key, value in row.items()
                }
            )

    atomic_write(folder / "summary.json", write_json)
    atomic_write(folder / "summary.csv", write_csv)
    logger.info("sweep summary: %s", folder / "summary.json")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _cell(value: Any) -> Any:
    return "" if _missing(value) else value
