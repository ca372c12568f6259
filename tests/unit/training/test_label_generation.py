from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from ktrdr.config import load_strategy_config
from ktrdr.errors import DataError
from ktrdr.training.label_generation import BUY, HOLD, SELL, generate_labels
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

BASE = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")


def config(threshold: float, lookahead: int) -> dict:
    cfg = copy.deepcopy(BASE)
    cfg["training"]["labels"] = {
        "source": "zigzag",
        "zigzag_threshold": threshold,
        "label_lookahead": lookahead,
    }
    return cfg


def bars_from(closes: list[float]) -> pd.DataFrame:
    close = np.asarray(closes, dtype=float)
    index = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 0.0},
        index=index,
    )


def test_hand_made_series() -> None:
    #        t=0    1      2      3      4      5      6      7
    closes = [100, 100.5, 101.2, 100.0, 98.9, 99.5, 99.6, 99.7, 99.8]
    labels = generate_labels(bars_from(closes), config(0.01, 3))
    # t=0: +1% (101) reached at t=2 first -> BUY. t=1: 101.505 never, 99.495 at t=4 -> SELL.
    # t=2: down 100.188 at t=3 -> SELL. t=3: 99.0 at t=4 -> SELL. t=4: 99.889 not reached,
    # 97.911 not reached within 3 -> HOLD. t=5: HOLD.
    assert labels.tolist() == [BUY, SELL, SELL, SELL, HOLD, HOLD]
    assert labels.dtype == np.int8 and labels.name == "label"


def test_buy_when_up_threshold_is_reached_first() -> None:
    labels = generate_labels(bars_from([100, 101, 98, 100, 100]), config(0.01, 2))
    assert labels.iloc[0] == BUY  # up at t+1 before down at t+2


def test_sell_when_down_threshold_is_reached_first() -> None:
    labels = generate_labels(bars_from([100, 99, 102, 100, 100]), config(0.01, 2))
    assert labels.iloc[0] == SELL


def test_exact_threshold_counts_as_reached() -> None:
    labels = generate_labels(bars_from([100, 101.0, 100, 100]), config(0.01, 1))
    assert labels.iloc[0] == BUY


def test_last_lookahead_bars_are_dropped_never_labelled_hold() -> None:
    bars = bars_from(list(np.linspace(100, 110, 30)))
    labels = generate_labels(bars, config(0.5, 7))
    assert len(labels) == 30 - 7
    assert labels.index.equals(bars.index[:23])


def test_too_few_bars_raises_data_error() -> None:
    with pytest.raises(DataError, match="label_lookahead=5"):
        generate_labels(bars_from([100, 101, 102, 103, 104]), config(0.01, 5))


def test_matches_a_plain_loop_on_real_bars(eurusd_1h: pd.DataFrame) -> None:
    bars = eurusd_1h.iloc[:800]
    threshold, lookahead = 0.004, 24
    labels = generate_labels(bars, config(threshold, lookahead)).to_numpy()
    close = bars["close"].to_numpy()
    expected = []
    for t in range(len(close) - lookahead):
        label = HOLD
        for k in range(1, lookahead + 1):
            if close[t + k] >= close[t] * (1 + threshold):
                label = BUY
                break
            if close[t + k] <= close[t] * (1 - threshold):
                label = SELL
                break
        expected.append(label)
    assert labels.tolist() == expected


def test_no_label_window_crosses_a_gap() -> None:
    closes = list(np.linspace(100, 110, 30))
    bars = bars_from(closes)
    # Thirty days without bars after bar 14.
    bars.index = bars.index.where(np.arange(30) < 15, bars.index + pd.Timedelta(days=30))
    labels = generate_labels(bars, config(0.01, 3), timeframe="1h")
    kept = set(labels.index)
    # The last 3 bars before the gap and the last 3 of the data have no full window.
    assert not kept & set(bars.index[12:15]) and not kept & set(bars.index[27:])
    assert kept == set(bars.index[:12]) | set(bars.index[15:27])
    # Without the timeframe, the bars' own spacing gives it.
    pd.testing.assert_series_equal(generate_labels(bars, config(0.01, 3)), labels)
