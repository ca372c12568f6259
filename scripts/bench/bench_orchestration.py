"""Orchestration costs: executor and reference path vs direct step calls, the e2e scenario's
wall time, cancellation latency, and the progress chain's overhead on training."""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ktrdr import load_model, train_strategy
from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.config import load_strategy_config
from ktrdr.data.sample import write_sample_data
from ktrdr.data.store import load_bars
from ktrdr.errors import CancellationError
from ktrdr.training import model_training
from ktrdr.training.executor import TrainingExecutor
from ktrdr.training.model_creation import create_model, seed_everything
from ktrdr.training.model_training import ModelTrainer
from ktrdr.training.progress_integration import TrainingProgressIntegrator
from ktrdr.training.train_strategy import StrategyTrainer
from scripts.bench.direct_steps import train_with_steps
from scripts.bench.harness import BenchResult, interleaved

STRATEGY = "strategies/neuro_mean_reversion.yaml"
START, END = "2017-01-01", "2017-03-31"
YEAR_START, YEAR_END = "2017-01-01", "2017-12-31"  # long enough that 5% is above the noise
# What `ktrdr train` users run: the sample year with the strategy's own settings. (A quarter at
# 8 epochs trained in 0.08 s, less than the fixed cost of any save, so its ratio measured that
# fixed cost rather than what persistence adds to a run.)
E2E_OVERRIDES: dict[str, Any] = {}
# The batch-report interval that makes the trainer report after every batch.
BATCH_REPORT_SECONDS_EVERY_BATCH = 0.0


def _timed(function: Any) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _orchestration(data_dir: Path, models_dir: Path) -> list[BenchResult]:
    config = load_strategy_config(
        STRATEGY, {"training.epochs": 10, "training.early_stopping": None}
    )

    def direct() -> None:
        train_with_steps(config, ["EURUSD"], ["1h"], YEAR_START, YEAR_END, data_dir)

    def executor() -> None:
        TrainingExecutor(
            {"strategy_config": config, "data_dir": data_dir, "device": "cpu"}
        ).execute(["EURUSD"], ["1h"], YEAR_START, YEAR_END, save=False)

    def reference() -> None:
        os.environ["USE_TRAINING_EXECUTOR"] = "false"
        StrategyTrainer(models_dir, data_dir).train_multi_symbol_strategy(
            config, ["EURUSD"], ["1h"], YEAR_START, YEAR_END, save=False, device="cpu"
        )

    times: dict[str, list[float]] = {"direct": [], "executor": [], "reference": []}
    for function in (direct, executor, reference):  # warm-up
        function()
    for _ in range(5):  # interleaved, so every path sees the same machine state
        for name, function in (
            ("direct", direct),
            ("executor", executor),
            ("reference", reference),
        ):
            times[name].append(_timed(function))
    os.environ.pop("USE_TRAINING_EXECUTOR", None)
    base = statistics.median(times["direct"])
    spread = max((max(t) - min(t)) / 2 / statistics.median(t) for t in times.values())
    return [
        BenchResult(
            name=f"{label} vs direct step calls",
            value=statistics.median(times[key]),
            unit="s",
            baseline=base,
            ratio=statistics.median(times[key]) / base,
            target=1.05,
            target_on="ratio",
            comparison="<=",
            note=f"real strategy, EURUSD 2017, 10 epochs, median of 5; spread ±{spread:.1%}",
            value_range=(min(times[key]), max(times[key])),
            baseline_range=(min(times["direct"]), max(times["direct"])),
        )
        for key, label in (
            ("executor", "TrainingExecutor.execute"),
            ("reference", "StrategyTrainer flag off"),
        )
    ]


def _e2e_scenario(data_dir: Path, models_dir: Path) -> BenchResult:
    config = load_strategy_config(STRATEGY, E2E_OVERRIDES)

    def scenario() -> None:
        result = train_strategy(
            ["EURUSD"],
            ["1h"],
            YEAR_START,
            YEAR_END,
            config,
            data_dir=data_dir,
            models_dir=models_dir,
        )
        model = load_model(result["model_path"])
        bars = load_bars(
            "EURUSD",
            "1h",
            "2017-12-01",
            "2017-12-31",
            data_dir=data_dir,
            history_bars=model.stable_history_bars["1h"],
        )
        model.predict(bars)

    timings = interleaved(
        lambda: train_with_steps(config, ["EURUSD"], ["1h"], YEAR_START, YEAR_END, data_dir),
        scenario,
    )
    return BenchResult(
        name="train the sample year, save (with pictures), reload, predict December",
        value=timings.subject_median,
        unit="s",
        baseline=timings.baseline_median,
        ratio=timings.ratio,
        target=1.5,
        target_on="ratio",
        comparison="<=",
        note="baseline: the same training through direct step calls, no save, reload or "
        f"predict; median of 5; spread ±{timings.spread():.1%}",
        value_range=(min(timings.subject), max(timings.subject)),
        baseline_range=(min(timings.baseline), max(timings.baseline)),
    )


def _one_cancellation(config: dict[str, Any], data_dir: Path, delay: float) -> float:
    """Milliseconds from cancel() during step 7 until CancellationError leaves execute()."""
    token = ThreadingCancellationToken()
    manager = GenericProgressManager()
    raised: dict[str, float] = {}

    def run() -> None:
        try:
            TrainingExecutor(
                {"strategy_config": config, "data_dir": data_dir},
                cancellation_token=token,
                progress_manager=manager,
            ).execute(["EURUSD"], ["1h"], START, END, save=False)
        except CancellationError:
            raised["at"] = time.perf_counter()

    worker = threading.Thread(target=run)
    worker.start()
    while manager.snapshot().step_number < 7:
        time.sleep(0.005)
    time.sleep(delay)
    cancelled_at = time.perf_counter()
    token.cancel("bench")
    worker.join()
    return (raised["at"] - cancelled_at) * 1000


def _cancellation_latency(data_dir: Path) -> list[BenchResult]:
    config = load_strategy_config(
        STRATEGY, {"training.epochs": 1000, "training.early_stopping": None}
    )
    rng = np.random.default_rng(0)
    latencies = [
        _one_cancellation(config, data_dir, float(rng.uniform(0.05, 0.3))) for _ in range(20)
    ]
    p50 = statistics.median(latencies)
    p95 = float(np.percentile(latencies, 95))
    return [
        BenchResult(
            name="cancellation latency p50",
            value=p50,
            unit="ms",
            baseline=0.0,
            ratio=0.0,
            target=100.0,
            target_on="value",
            comparison="<=",
            note="cancel() during step 7 until CancellationError leaves execute()",
        ),
        BenchResult(
            name="cancellation latency p95 (20 runs)",
            value=p95,
            unit="ms",
            baseline=0.0,
            ratio=0.0,
            target=100.0,
            target_on="value",
            comparison="<=",
        ),
    ]


def _pool_cancellation_latency(data_dir: Path) -> list[BenchResult]:
    """Milliseconds from ``cancel()`` on a ``RunPool`` handle during step 7 until the handle has
    ended: what the backend API's caller and the runs ledger see, across the worker process
    (the token's relay, the outcome's trip back and the worker let go)."""
    from ktrdr.runs.pool import RunPool
    from ktrdr.training.run_spec import build_run_spec

    rng = np.random.default_rng(1)
    pool = RunPool(1)
    latencies = []
    try:
        for index in range(10):
            spec = build_run_spec(
                STRATEGY,
                ["EURUSD"],
                ["1h"],
                START,
                END,
                overrides={"training.epochs": 1000, "training.early_stopping": None},
                data_dir=data_dir,
                save=False,
                threads=1,
                run_id=f"bench-cancel-{index}",
            )
            handle = pool.start(spec)
            while (handle.snapshot() or {}).get("step_number", 0) < 7:
                time.sleep(0.005)
            time.sleep(float(rng.uniform(0.05, 0.3)))
            cancelled_at = time.perf_counter()
            handle.cancel()
            handle.wait(60)
            latencies.append((time.perf_counter() - cancelled_at) * 1000)
    finally:
        pool.shutdown()
    return [
        BenchResult(
            name="pool cancellation latency p95 (10 runs)",
            value=float(np.percentile(latencies, 95)),
            unit="ms",
            baseline=0.0,
            ratio=0.0,
            target=100.0,
            target_on="value",
            comparison="<=",
            note=f"p50 {statistics.median(latencies):.1f} ms; cancel() on a worker's run until "
            "its handle ended",
        ),
    ]


def _progress_overhead() -> list[BenchResult]:
    """What the progress chain adds to a training run.

    A run hands the chain a few reports (one per epoch, one about every 300 ms), so with and
    without it differ by far less than this machine's run-to-run noise (single 1.2 s runs vary
    by 5-10%). The cost is therefore measured where it is large: the same training reporting
    after every batch, interleaved with training without a callback. The difference per report
    (building its payload in the trainer included) times the reports a normal run makes gives
    the chain's share of a run.
    """
    strategy = load_strategy_config(STRATEGY)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40_000, 18)).astype(np.float32)
    y = rng.integers(0, 3, 40_000).astype(np.int64)
    training = {**strategy["training"], "epochs": 3, "early_stopping": None}

    def train(with_progress: bool, epochs: int = 3) -> int:
        seed_everything(1)
        model = create_model(18, strategy)
        reports = 0
        callback = None
        if with_progress:
            manager = GenericProgressManager()
            manager.start_step(7)
            chain = TrainingProgressIntegrator(manager).create_callback()

            def callback(epoch: int, total: int, metrics: dict[str, Any]) -> None:
                nonlocal reports
                reports += 1
                chain(epoch, total, metrics)

        config = {**training, "epochs": epochs}
        trainer = ModelTrainer(config, progress_callback=callback, device="cpu")
        trainer.train(model, x[4000:], y[4000:], x[:4000], y[:4000])
        return reports

    train(False)  # warm-up
    started = time.perf_counter()
    normal_reports = train(True)
    run_seconds = time.perf_counter() - started
    every_batch = BATCH_REPORT_SECONDS_EVERY_BATCH
    saved, model_training.BATCH_REPORT_SECONDS = model_training.BATCH_REPORT_SECONDS, every_batch
    try:
        # One epoch: each report's cost does not depend on how many epochs there are.
        stress_reports = train(True, epochs=1)
        timings = interleaved(lambda: train(False, epochs=1), lambda: train(True, epochs=1))
    finally:
        model_training.BATCH_REPORT_SECONDS = saved
    per_report = (timings.subject_median - timings.baseline_median) / stress_reports
    share = normal_reports * per_report / run_seconds
    return [
        BenchResult(
            name="progress chain's share of a training run",
            value=share,
            unit="",
            baseline=run_seconds,
            ratio=share,
            target=0.02,
            target_on="ratio",
            comparison="<=",
            note=f"{normal_reports} reports per run x {per_report * 1e6:.0f} us each, over "
            f"its {run_seconds:.2f} s (36k rows, batch 32, 3 epochs); per report: one epoch "
            f"with a report after each of its {stress_reports} batches "
            f"({timings.subject_median:.2f} s, {min(timings.subject):.2f}-"
            f"{max(timings.subject):.2f}) against none ({timings.baseline_median:.2f} s, "
            f"{min(timings.baseline):.2f}-{max(timings.baseline):.2f}), 5 interleaved pairs",
        )
    ]


def run() -> list[BenchResult]:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir, models_dir = Path(scratch) / "data", Path(scratch) / "models"
        write_sample_data(data_dir)
        results = _orchestration(data_dir, models_dir)
        results.append(_e2e_scenario(data_dir, models_dir))
        results.extend(_cancellation_latency(data_dir))
        results.extend(_pool_cancellation_latency(data_dir))
    results.extend(_progress_overhead())
    return results
