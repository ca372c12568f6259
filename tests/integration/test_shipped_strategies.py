"""The shipped strategies keep their promise: no class above 60% on their sample data (§7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ktrdr.config import load_strategy_config
from ktrdr.data.store import load_bars
from ktrdr.data.timeframes import base_timeframe
from ktrdr.training.label_generation import generate_labels
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("path", sorted(STRATEGIES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_no_class_exceeds_60_percent_on_the_2017_sample(path: Path, sample_data_dir: Path) -> None:
    config = load_strategy_config(path)
    timeframe = base_timeframe(config["training_data"]["timeframes"])
    labels = np.concatenate(
        [
            generate_labels(
                load_bars(symbol, timeframe, "2017-01-01", "2017-12-31", data_dir=sample_data_dir),
                config,
            ).to_numpy()
            for symbol in config["training_data"]["symbols"]
        ]
    )
    shares = np.bincount(labels, minlength=3) / len(labels)
    assert shares.max() <= 0.6, dict(zip(("BUY", "HOLD", "SELL"), shares.round(3), strict=True))
    assert (shares > 0.05).all()  # every class is present in useful numbers
