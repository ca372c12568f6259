"""Steps 1-6 as a run does them: bars read from the store, indicators, memberships, features,
labels, split and scaling, with the real strategies.

1. One symbol, ~1M synthetic 1h bars (neuro_mean_reversion), against reading the same store file
   and TA-Lib computing the strategy's indicators alone: the least any pipeline must do.
2. Four symbols x 1h + 4h, 10 years each (trend_momentum_mtf), the same comparison.
Each figure is the median of 5 runs measured in alternation with its baseline.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import talib

from ktrdr.config import load_strategy_config
from ktrdr.data.store import load_bars, write_bars
from ktrdr.data.synthetic import generate_bars
from ktrdr.data.timeframes import resample_bars
from ktrdr.training.feature_scaling import apply_scaler, fit_scaler
from scripts.bench.direct_steps import split_with_steps
from scripts.bench.harness import BenchResult, interleaved

TARGET_BARS_PER_SECOND = 400_000
CASES = (
    ("steps 1-6, 1 symbol x 1h, ~1M bars", "neuro_mean_reversion", ["BENCH"], ["1h"], 1905, 2018),
    (
        "steps 1-6, 4 symbols x 1h+4h, 10 years",
        "trend_momentum_mtf",
        ["A", "B", "C", "D"],
        ["1h", "4h"],
        2010,
        2019,
    ),
)


def _store(folder: Path, symbols: list[str], timeframes: list[str], first: int, last: int) -> int:
    bars_written = 0
    for symbol in symbols:
        hourly = generate_bars(symbol, "1h", f"{first}-01-01", f"{last}-12-31", seed=1)
        for timeframe in timeframes:
            bars = hourly if timeframe == "1h" else resample_bars(hourly, "1h", timeframe)
            write_bars(symbol, timeframe, bars, data_dir=folder)
            bars_written += len(bars)
    return bars_written


def _pipeline(
    config: dict, symbols: list[str], timeframes: list[str], start: str, end: str, folder: Path
) -> Callable[[], None]:
    def run() -> None:
        splits, _ = split_with_steps(config, symbols, timeframes, start, end, folder)
        scaler = fit_scaler(splits.train.features)
        for name in ("train", "validation", "test"):
            apply_scaler(splits.part(name).features, scaler)

    return run


def _floor(
    config: dict, symbols: list[str], timeframes: list[str], folder: Path
) -> Callable[[], None]:
    """Read every store file and let TA-Lib compute the strategy's indicators, nothing else."""

    def run() -> None:
        for symbol in symbols:
            for timeframe in timeframes:
                close = load_bars(symbol, timeframe, data_dir=folder)["close"].to_numpy()
                for indicator in config["indicators"]:
                    talib.EMA(close, timeperiod=int(indicator.get("period", 14)))

    return run


def run() -> list[BenchResult]:
    results = []
    for name, strategy, symbols, timeframes, first, last in CASES:
        config = load_strategy_config(f"strategies/{strategy}.yaml")
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            bars = _store(folder, symbols, timeframes, first, last)
            start, end = f"{first}-01-01", f"{last}-12-31"
            timings = interleaved(
                _floor(config, symbols, timeframes, folder),
                _pipeline(config, symbols, timeframes, start, end, folder),
            )
        rate = bars / timings.subject_median
        results.append(
            BenchResult(
                name=name,
                value=rate,
                unit="bars/s",
                baseline=bars / timings.baseline_median,
                ratio=timings.ratio,
                target=TARGET_BARS_PER_SECOND,
                target_on="value",
                comparison=">=",
                note=f"{bars:,} bars; baseline: store read + TA-Lib alone; spread "
                f"±{timings.spread():.1%}",
                value_range=(bars / max(timings.subject), bars / min(timings.subject)),
                baseline_range=(bars / max(timings.baseline), bars / min(timings.baseline)),
            )
        )
    return results
