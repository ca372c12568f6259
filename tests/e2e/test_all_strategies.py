"""Every strategy file validates and trains for one epoch on synthetic bars of its own shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr import load_strategy_config, train_strategy
from ktrdr.data.synthetic import write_synthetic_store
from tests.conftest import STRATEGIES_DIR

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize("path", sorted(STRATEGIES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_strategy_trains_one_epoch(path: Path, tmp_path: Path, models_dir: Path) -> None:
    config = load_strategy_config(path, {"training.epochs": 1})
    symbols = config["training_data"]["symbols"]
    timeframes = config["training_data"]["timeframes"]
    daily = "1d" in timeframes
    start, end = ("2019-01-01", "2023-12-31") if daily else ("2023-01-01", "2023-04-30")
    write_synthetic_store(tmp_path, symbols, timeframes, start, end)
    result = train_strategy(
        symbols, timeframes, start, end, config, data_dir=tmp_path, models_dir=models_dir
    )
    assert result["success"] and Path(result["model_path"]).is_dir()
    assert result["training_metrics"]["epochs"] == 1
    assert result["metadata"]["symbols"] == symbols
