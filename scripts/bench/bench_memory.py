"""Peak memory and time per step of steps 1-11, and predict throughput, each in a fresh process.

1. 10 symbols x 1h, 4h and 1d x 5 years of synthetic bars (trend_momentum_mtf, 1 epoch, no
   save): peak resident memory over the post-import baseline, as a multiple of the float32
   feature matrix the trainer needs. Target: at most 3x. The baseline is taken after every import
   a training process makes (the modules a service worker preloads); the run checks that
   torch._dynamo is never imported, and samples resident memory every 2 ms for each step's
   highest.
2. The same run at 1, 5 and 20 years of one symbol and 1, 4 and 10 symbols of 5 years: the
   linear fit of peak memory over feature rows (bytes per row against the float32 row; target:
   at most 3x) and of each step's time over rows.
3. Predict throughput of a trained model on 10k, 100k and 1M hourly bars, in bars per second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from scripts.bench.harness import BenchResult

ROOT = Path(__file__).resolve().parents[2]
TIMEFRAMES = ["1h", "4h", "1d"]
LAST_DAY = "2019-12-31"
# (symbols, years) of each run; the first is the target's workload.
RUNS = [(10, 5), (1, 1), (1, 5), (1, 20), (4, 5)]

_MEMORY = """
import json, logging, resource, sys, threading, time
sys.path.insert(0, sys.argv[2])
from ktrdr.config import load_strategy_config
from ktrdr.training.executor import TrainingExecutor
import torch
torch.set_num_threads(1)
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
import scipy.stats, skfuzzy, talib
baseline = peak()
symbols, years = int(sys.argv[3]), int(sys.argv[4])
start = f"{2020 - years}-01-01"
config = load_strategy_config(
    sys.argv[2] + "/strategies/trend_momentum_mtf.yaml",
    {"training.epochs": 1, "training_data.timeframes": ["1h", "4h", "1d"]},
)
stamps = []
# Resident memory sampled every 2 ms, the highest per step (Linux: /proc/self/statm).
step_peaks, current = {}, ["setup"]
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()
def sample():
    while current[0] is not None:
        step_peaks[current[0]] = max(step_peaks.get(current[0], 0), resident())
        time.sleep(0.002)
sampler = threading.Thread(target=sample, daemon=True)
if sys.platform.startswith("linux"):
    sampler.start()
class Steps(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("Step "):
            stamps.append((record.getMessage().split(":")[0], time.perf_counter()))
            current[0] = record.getMessage().split(":")[0]
logging.getLogger("ktrdr").addHandler(Steps())
logging.getLogger("ktrdr").setLevel(logging.INFO)
result = TrainingExecutor({"strategy_config": config, "data_dir": sys.argv[1]}).execute(
    [f"S{i}" for i in range(symbols)], ["1h", "4h", "1d"], start, "2019-12-31", save=False
)
current[0] = None
steps = {name: later - now for (name, now), (_, later) in zip(stamps, stamps[1:])}
print(json.dumps({
    "baseline": baseline, "dynamo": "torch._dynamo" in sys.modules, "peak": peak(),
    "rows": result["metadata"]["total_samples"], "features": len(result["feature_names"]),
    "steps": steps, "step_peaks": {k: v - baseline for k, v in step_peaks.items()},
}))
"""

_PREDICT = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
import torch
torch.set_num_threads(1)
from ktrdr.data.synthetic import generate_bars
from ktrdr.inference.trained_model import load_model
model = load_model(sys.argv[1])
rates = {}
for count, last in ((10_000, "2001-08-31"), (100_000, "2017-12-31"), (1_000_000, "2159-12-31")):
    bars = generate_bars("P", "1h", "2000-01-01", last, seed=2).iloc[:count]
    model.predict(bars.iloc[:5000])
    started = time.perf_counter()
    model.predict(bars)
    rates[len(bars)] = len(bars) / (time.perf_counter() - started)
print(json.dumps(rates))
"""


def _store(folder: Path) -> None:
    from ktrdr.data.store import write_bars
    from ktrdr.data.synthetic import generate_bars
    from ktrdr.data.timeframes import resample_bars

    most_symbols = max(symbols for symbols, _ in RUNS)
    for number in range(most_symbols):
        years = max(y for symbols, y in RUNS if symbols > number)
        symbol = f"S{number}"
        hourly = generate_bars(symbol, "1h", f"{2020 - years}-01-01", LAST_DAY, seed=1 + number)
        for timeframe in TIMEFRAMES:
            bars = hourly if timeframe == "1h" else resample_bars(hourly, "1h", timeframe)
            write_bars(symbol, timeframe, bars, data_dir=folder)


def _model(data: Path, models: Path) -> Path:
    from ktrdr.config import load_strategy_config
    from ktrdr.training.train_strategy import StrategyTrainer

    config = load_strategy_config(ROOT / "strategies/neuro_mean_reversion.yaml")
    result = StrategyTrainer(models, data).train_multi_symbol_strategy(
        config, ["S0"], ["1h"], "2015-01-01", "2015-12-31", threads=1
    )
    return Path(result["model_path"])


def _child(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _fit(rows: list[float], values: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of ``values`` over ``rows``."""
    slope, intercept = np.polyfit(np.asarray(rows, dtype=float), np.asarray(values), 1)
    return float(slope), float(intercept)


def run() -> list[BenchResult]:
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        _store(data)
        runs = {
            (symbols, years): _child(_MEMORY, str(data), str(ROOT), str(symbols), str(years))
            for symbols, years in RUNS
        }
        rates = _child(_PREDICT, str(_model(data, Path(scratch) / "models")), str(ROOT))
    mib = 2**20
    target = runs[RUNS[0]]
    row_bytes = target["features"] * 4
    matrix = target["rows"] * row_bytes
    over = target["peak"] - target["baseline"]
    rows = [r["rows"] for r in runs.values()]
    slope, intercept = _fit(rows, [r["peak"] - r["baseline"] for r in runs.values()])
    per_step = {
        step: _fit(rows, [r["steps"].get(step, 0.0) for r in runs.values()])[0] * 1e6
        for step in target["steps"]
    }
    points = ", ".join(
        f"{s} sym x {y} y: {r['rows']:,} rows, {(r['peak'] - r['baseline']) / mib:.0f} MiB, "
        f"{sum(r['steps'].values()):.2f} s"
        for (s, y), r in runs.items()
    )
    results = [
        BenchResult(
            name="peak memory, 10 symbols x 1h/4h/1d x 5 years",
            value=over / mib,
            unit="MiB",
            baseline=matrix / mib,
            ratio=over / matrix,
            target=3.0,
            target_on="ratio",
            comparison="<=",
            note="value: peak resident memory over the post-import baseline (torch._dynamo "
            f"imported: {target['dynamo']}); baseline: the "
            f"float32 feature matrix ({target['rows']:,} rows x {target['features']} features); "
            "highest resident memory in each step, in matrices: "
            + ", ".join(
                f"{step.lower()} {value / matrix:.2f}"
                for step, value in target.get("step_peaks", {}).items()
                if step.startswith("Step ")
            ),
        ),
        BenchResult(
            name="peak memory per feature row, fit over 5 runs",
            value=slope,
            unit="B/row",
            baseline=row_bytes,
            ratio=slope / row_bytes,
            target=3.0,
            target_on="ratio",
            comparison="<=",
            note=f"intercept {intercept / mib:.0f} MiB; runs: {points}; time per step, "
            "microseconds per feature row: "
            + ", ".join(f"{step.lower()} {us:.2f}" for step, us in per_step.items()),
        ),
    ]
    for count, rate in rates.items():
        results.append(
            BenchResult(
                name=f"predict throughput, {int(count):,} bars",
                value=rate,
                unit="bars/s",
                baseline=0.0,
                ratio=0.0,
                target=50_000,
                target_on="value",
                comparison=">=",
                note="neuro_mean_reversion, features recomputed from raw bars, one thread",
            )
        )
    return results
