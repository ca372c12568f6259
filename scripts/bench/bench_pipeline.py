"""Steps 2-6 on 1,000,000 synthetic 1h bars with the real strategy, against TA-Lib alone."""

from __future__ import annotations

import talib

from ktrdr.config import load_strategy_config
from ktrdr.data.synthetic import generate_bars
from ktrdr.training.data_split import split_data
from ktrdr.training.feature_engineering import engineer_features
from ktrdr.training.feature_scaling import apply_scaler, fit_scaler
from ktrdr.training.fuzzy_generation import generate_fuzzy_memberships
from ktrdr.training.indicator_calculation import calculate_indicators
from ktrdr.training.label_generation import generate_labels
from scripts.bench.harness import BenchResult, best_time

STRATEGY = "strategies/neuro_mean_reversion.yaml"
TARGET_BARS_PER_SECOND = 1_000_000


def run() -> list[BenchResult]:
    config = load_strategy_config(STRATEGY)
    bars = generate_bars("BENCH", "1h", "1900-01-01", "2059-09-01", seed=1)  # ~1.0M bars
    by_timeframe = {"1h": bars}
    close = bars["close"].to_numpy()

    def pipeline() -> None:
        indicators = calculate_indicators(by_timeframe, config, symbol="BENCH")
        fuzzy = generate_fuzzy_memberships(indicators, config)
        features = engineer_features(fuzzy, indicators, by_timeframe, config)
        labels = generate_labels(bars, config)
        splits = split_data({"BENCH": (features, labels)}, config)
        scaler = fit_scaler(splits.train.features)
        for name in ("train", "validation", "test"):
            apply_scaler(splits.part(name).features, scaler)

    def talib_alone() -> None:
        # The same indicators as the strategy, straight from TA-Lib.
        talib.RSI(close, timeperiod=14)
        talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)

    pipeline_rate = len(bars) / best_time(pipeline)
    talib_rate = len(bars) / best_time(talib_alone)
    return [
        BenchResult(
            name="steps 2-6, 1M bars, neuro_mean_reversion",
            value=pipeline_rate,
            unit="bars/s",
            baseline=talib_rate,
            ratio=pipeline_rate / talib_rate,
            target=TARGET_BARS_PER_SECOND,
            target_on="value",
            comparison=">=",
            note=f"baseline: TA-Lib RSI + MACD alone on the same {len(bars)} bars",
        )
    ]
