"""What a strategy implies about its features: names in the order the model reads them, and
the history its indicators and lags need."""

from __future__ import annotations

import pytest

from ktrdr.config import load_strategy_config
from ktrdr.config.features import (
    current_feature_names,
    feature_history_bars,
    feature_names,
    indicator_history_bars,
    indicator_warmup_bars,
)
from ktrdr.indicators.registry import REGISTRY
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit


def test_names_are_memberships_then_lags_and_each_timeframe_is_prefixed() -> None:
    config = load_strategy_config(
        STRATEGIES_DIR / "trend_momentum_mtf.yaml",
        {"model.features.lookback_periods": 2, "model.features.include_price_context": False},
    )
    current = [f"{column}_{name}" for column, sets in config["fuzzy_sets"].items() for name in sets]
    assert current_feature_names(config) == current
    block = current + [f"{n}_lag_1" for n in current] + [f"{n}_lag_2" for n in current]
    # Given in any order, timeframes come shortest first.
    assert feature_names(config, ["4h", "1h"]) == [f"1h_{n}" for n in block] + [
        f"4h_{n}" for n in block
    ]
    assert feature_names(config, ["1h"]) == block


def test_history_is_the_longest_indicator_need_plus_the_lags() -> None:
    config = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")
    stable = max(REGISTRY[i["type"]].stable_history_bars(i) for i in config["indicators"])
    warmup = max(REGISTRY[i["type"]].warmup_bars(i) for i in config["indicators"])
    assert indicator_history_bars(config) == stable >= indicator_warmup_bars(config) == warmup
    features = config["model"]["features"]
    expected = max(int(features["lookback_periods"]), int(features["include_price_context"]))
    assert feature_history_bars(config) == expected
