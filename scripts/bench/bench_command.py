"""The whole command, cold: ``ktrdr train`` of the shipped strategy on the sample year.

1. Against a minimal script doing the same work with direct step calls (imports, steps 1-10, the
   save, one thread): what the CLI, the orchestrator and the progress display cost on top.
2. With torch's thread count left to ktrdr, against the fastest explicit ``--threads`` for the
   same run, on a quiet machine and beside a process that keeps one core busy.
Each figure is the median of its runs measured in alternation with its baseline: on a quiet
machine the baseline script, ktrdr's choice and the other thread setting run in each of 5 rounds
(ktrdr's runs are also the runs of the setting it chose, read from its result); beside a busy
core the faster setting and ktrdr's choice alternate 5 times.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ktrdr.data.sample import write_sample_data
from scripts.bench.harness import BenchResult, Timings, interleaved

ROOT = Path(__file__).resolve().parents[2]
KTRDR = str(Path(sys.executable).parent / "ktrdr")
START, END = "2017-01-01", "2017-12-31"
REPEATS = 5
# Rounds of the three quiet-machine runs (baseline script, ktrdr's choice, the other setting).
QUIET_ROUNDS = 5


@contextmanager
def _busy_core() -> Iterator[None]:
    """A competing process that keeps one core busy for the block."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        busy.kill()
        busy.wait()


def _runner(command: list[str], env: dict[str, str]) -> Callable[[], str]:
    def run() -> str:
        done = subprocess.run(
            command, check=True, env=env, cwd=ROOT, capture_output=True, text=True
        )
        return done.stdout

    return run


def _result(name: str, timings: Timings, target: float, note: str) -> BenchResult:
    return BenchResult(
        name=name,
        value=timings.subject_median,
        unit="s",
        baseline=timings.baseline_median,
        ratio=timings.ratio,
        target=target,
        target_on="ratio",
        comparison="<=",
        note=f"{note}; spread ±{timings.spread():.1%}",
        value_range=(min(timings.subject), max(timings.subject)),
        baseline_range=(min(timings.baseline), max(timings.baseline)),
    )


def run() -> list[BenchResult]:
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        write_sample_data(data)
        env = {k: v for k, v in os.environ.items() if k != "KTRDR_TORCH_THREADS"}
        env["USE_TRAINING_EXECUTOR"] = "true"

        def train(*extra: str) -> Callable[[], str]:
            models = tempfile.mkdtemp(dir=scratch)
            dates = ["--start", START, "--end", END]
            stores = ["--data-dir", str(data), "--models-dir", models]
            command = [KTRDR, "train", "strategies/neuro_mean_reversion.yaml", *dates, *stores]
            return _runner([*command, "--json", *extra], env)

        script = [sys.executable, "scripts/bench/direct_steps.py", str(data)]
        chosen = train()
        # The warm-up run (the first on a fresh machine builds caches, matplotlib's font list
        # among them) also says which thread count ktrdr chose here.
        threads = _chosen_threads(chosen)
        other = "2" if threads == 1 else "1"
        runs = {
            "direct": _runner([*script, tempfile.mkdtemp(dir=scratch), START, END], env),
            "chosen": chosen,
            other: train("--threads", other),
        }
        # Quiet machine: the baseline script, ktrdr's choice and the other thread setting
        # alternate in every round. ktrdr's runs are also the runs of its own setting.
        times = _rounds(runs, QUIET_ROUNDS)
        results.append(
            _result(
                "cold ktrdr train, sample year",
                Timings(times["direct"], times["chosen"]),
                1.10,
                "baseline: scripts/bench/direct_steps.py doing the same work with direct calls",
            )
        )
        mine, theirs = statistics.median(times["chosen"]), statistics.median(times[other])
        fastest = times["chosen"] if mine <= theirs else times[other]
        results.append(
            _result(
                "ktrdr train threads chosen vs fastest, quiet",
                Timings(fastest, times["chosen"]),
                1.15,
                f"ktrdr chose {threads} thread(s): {mine:.2f} s; --threads {other}: {theirs:.2f} s",
            )
        )
        runs.update({"1": train("--threads", "1"), "2": train("--threads", "2")})
        with _busy_core():
            best, one, two, timings = _against_fastest_busy(runs)
        results.append(
            _result(
                "ktrdr train threads chosen vs fastest, one core busy",
                timings,
                1.15,
                f"fastest: {' '.join(best)} (1 thread {one:.2f} s, 2 threads {two:.2f} s)",
            )
        )
    return results


def _rounds(runs: dict[str, Callable[[], str]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each run, all of them in every round."""
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            started = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - started)
    return times


def _chosen_threads(run: Callable[[], str]) -> int:
    """Run ``ktrdr train --json`` once and read the thread count it chose from its result."""
    return int(json.loads(run())["metadata"]["torch_threads"])


def _against_fastest_busy(
    runs: dict[str, Callable[[], str]],
) -> tuple[tuple[str, str], float, float, Timings]:
    """Beside a busy core, ktrdr's choice against the faster of one and two threads.

    Two threads there are 3-8x slower and a run of them costs 10-30 s: one run of each settles
    which is faster when they differ by more than 1.5x; otherwise two more of each decide.
    """
    first = interleaved(runs["1"], runs["2"], repeats=1, warmup=0)
    one, two = first.baseline, first.subject
    if max(first.ratio, 1 / first.ratio) <= 1.5:
        more = interleaved(runs["1"], runs["2"], repeats=2, warmup=0)
        one, two = one + more.baseline, two + more.subject
    one_median, two_median = statistics.median(one), statistics.median(two)
    faster = "1" if one_median <= two_median else "2"
    timings = interleaved(runs[faster], runs["chosen"], repeats=REPEATS, warmup=0)
    return ("--threads", faster), one_median, two_median, timings
