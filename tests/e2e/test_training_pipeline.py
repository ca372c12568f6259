"""End-to-end guard on the real strategy; each issue extends it to the furthest step it delivers."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.config import load_strategy_config
from ktrdr.data.store import load_bars
from ktrdr.data.timeframes import base_timeframe
from tests.conftest import STRATEGIES_DIR

pytestmark = [pytest.mark.e2e]

REAL_STRATEGY = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
START, END = "2017-01-01", "2017-03-31"


def test_real_strategy_validates_and_its_sample_bars_load(e2e_env: dict[str, Path]) -> None:
    config = load_strategy_config(
        REAL_STRATEGY, overrides={"training.epochs": 5, "training.batch_size": 64}
    )
    assert config["name"] == "neuro_mean_reversion"
    assert config["training"]["epochs"] == 5
    symbols = config["training_data"]["symbols"]
    timeframe = base_timeframe(config["training_data"]["timeframes"])
    for symbol in symbols:
        bars = load_bars(symbol, timeframe, START, END)  # from KTRDR_DATA_DIR
        assert bars.index[0].strftime("%Y-%m-%d") == "2017-01-01"
        assert bars.index[-1].strftime("%Y-%m-%d") == "2017-03-31"
        assert len(bars) > 1400
        assert (bars["high"] >= bars["low"]).all()


def test_steps_1_to_6_on_the_real_strategy(e2e_env: dict[str, Path]) -> None:
    from ktrdr.training.data_loading import load_training_data
    from ktrdr.training.data_split import split_data
    from ktrdr.training.feature_engineering import (
        engineer_features,
        feature_history_bars,
        feature_names,
    )
    from ktrdr.training.feature_scaling import apply_scaler, fit_scaler
    from ktrdr.training.fuzzy_generation import generate_fuzzy_memberships
    from ktrdr.training.indicator_calculation import calculate_indicators, indicator_history_bars
    from ktrdr.training.label_generation import generate_labels

    config = load_strategy_config(REAL_STRATEGY)
    symbols = config["training_data"]["symbols"]
    timeframes = config["training_data"]["timeframes"]
    history = indicator_history_bars(config) + feature_history_bars(config)
    bars = load_training_data(symbols, timeframes, START, END, history_bars=history)
    per_symbol = {}
    for symbol in symbols:
        indicators = calculate_indicators(bars[symbol], config, symbol=symbol)
        fuzzy = generate_fuzzy_memberships(indicators, config)
        features = engineer_features(
            fuzzy, indicators, bars[symbol], config, start_date=START, end_date=END
        )
        labels = generate_labels(bars[symbol][timeframes[0]], config)
        assert list(features.columns) == feature_names(config, timeframes)
        assert features.index[0] >= features.index[0].normalize().replace(day=1)
        per_symbol[symbol] = (features, labels)
    splits = split_data(per_symbol, config)
    scaler = fit_scaler(splits.train.features)
    train = apply_scaler(splits.train.features, scaler)
    assert len(splits.train) > 900 and len(splits.validation) > 150 and len(splits.test) > 150
    assert abs(float(train.to_numpy().mean())) < 1e-9
    shares = {
        name: count / len(splits.train)
        for name, count in splits.class_counts["train"]["all"].items()
    }
    assert max(shares.values()) <= 0.6, shares  # the strategy's labels stay balanced
    train_end = splits.boundaries["train"]["EURUSD"]["end"]
    validation_start = splits.boundaries["validation"]["EURUSD"]["start"]
    assert validation_start > train_end
