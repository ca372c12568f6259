"""Peak memory of steps 1-10 and predict throughput, each in a fresh process.

1. 10 symbols x 1h, 4h and 1d x 5 years of synthetic bars (trend_momentum_mtf, 1 epoch, no
   save): peak resident memory over the post-import baseline, as a multiple of the float32
   feature matrix the trainer needs. Target: at most 3x.
2. Predict throughput of a trained model on 10k, 100k and 1M hourly bars, in bars per second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.bench.harness import BenchResult

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = [f"S{i}" for i in range(10)]
TIMEFRAMES = ["1h", "4h", "1d"]

_MEMORY = """
import json, resource, sys
sys.path.insert(0, sys.argv[2])
from ktrdr.config import load_strategy_config
from ktrdr.training.executor import TrainingExecutor
import torch
torch.set_num_threads(1)
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
config = load_strategy_config(
    sys.argv[2] + "/strategies/trend_momentum_mtf.yaml",
    {"training.epochs": 1, "training_data.timeframes": ["1h", "4h", "1d"]},
)
baseline = peak()
result = TrainingExecutor({"strategy_config": config, "data_dir": sys.argv[1]}).execute(
    [f"S{i}" for i in range(10)], ["1h", "4h", "1d"], "2015-01-01", "2019-12-31", save=False
)
matrix = result["metadata"]["total_samples"] * len(result["feature_names"]) * 4
print(json.dumps({"baseline": baseline, "peak": peak(), "matrix": matrix}))
"""

_PREDICT = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
import torch
torch.set_num_threads(1)
from ktrdr.data.synthetic import generate_bars
from ktrdr.training.inference import load_model
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

    for symbol in SYMBOLS:
        hourly = generate_bars(symbol, "1h", "2015-01-01", "2019-12-31", seed=1)
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


def run() -> list[BenchResult]:
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        _store(data)
        memory = _child(_MEMORY, str(data), str(ROOT))
        rates = _child(_PREDICT, str(_model(data, Path(scratch) / "models")), str(ROOT))
    over = memory["peak"] - memory["baseline"]
    mib = 2**20
    results = [
        BenchResult(
            name="peak memory, 10 symbols x 1h/4h/1d x 5 years",
            value=over / mib,
            unit="MiB",
            baseline=memory["matrix"] / mib,
            ratio=over / memory["matrix"],
            target=3.0,
            target_on="ratio",
            comparison="<=",
            note="value: peak resident memory over the post-import baseline; baseline: the "
            "float32 feature matrix",
        )
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
