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
