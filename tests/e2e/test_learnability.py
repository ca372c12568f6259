"""The plan's sanity check: the real strategy learns a planted causal signal."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr import train_strategy
from ktrdr.data.store import write_bars
from tests.conftest import STRATEGIES_DIR
from tests.e2e.synthetic import mean_reverting_bars

pytestmark = [pytest.mark.e2e]


def test_real_strategy_learns_a_planted_mean_reversion(tmp_path: Path, models_dir: Path) -> None:
    bars = mean_reverting_bars("2023-01-01", "2023-06-30")
    write_bars("EURUSD", "1h", bars, data_dir=tmp_path)
    result = train_strategy(
        ["EURUSD"],
        ["1h"],
        "2023-01-01",
        "2023-06-30",
        STRATEGIES_DIR / "neuro_mean_reversion.yaml",
        data_dir=tmp_path,
        models_dir=models_dir,
    )
    test = result["test_metrics"]
    assert test["accuracy"] > 0.5, test
    assert test["accuracy"] >= test["baseline_accuracy"] + 0.10, test
