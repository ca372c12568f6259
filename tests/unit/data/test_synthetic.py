from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.data.synthetic import generate_bars
from ktrdr.data.validation import check_ohlcv
from ktrdr.errors import DataError

pytestmark = pytest.mark.unit


def test_same_seed_same_bars_and_symbols_differ() -> None:
    a = generate_bars("AAA", "1h", "2024-01-01", "2024-02-01", seed=5)
    b = generate_bars("AAA", "1h", "2024-01-01", "2024-02-01", seed=5)
    c = generate_bars("BBB", "1h", "2024-01-01", "2024-02-01", seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["close"].to_numpy(), c["close"].to_numpy())


@pytest.mark.parametrize("timeframe", ["5m", "1h", "4h", "1d", "1w"])
def test_bars_are_valid_at_every_timeframe(timeframe: str) -> None:
    bars = generate_bars("SYN", timeframe, "2023-01-01", "2023-06-30", seed=2)
    check_ohlcv(bars, "synthetic", timeframe)


def test_intraday_bars_have_fx_weekend_gaps() -> None:
    bars = generate_bars("SYN", "1h", "2024-01-01", "2024-01-31", seed=2)
    saturday = bars.index.day_of_week == 5
    assert not saturday.any()
    friday_late = (bars.index.day_of_week == 4) & (bars.index.hour >= 22)
    assert not friday_late.any()
    assert ((bars.index.day_of_week == 6) & (bars.index.hour == 22)).any()


def test_volatility_clusters() -> None:
    bars = generate_bars("SYN", "1h", "2020-01-01", "2023-12-31", seed=9)
    abs_returns = np.abs(np.diff(np.log(bars["close"].to_numpy())))
    # Clustered volatility: |returns| are autocorrelated, unlike i.i.d. noise.
    lagged = np.corrcoef(abs_returns[:-1], abs_returns[1:])[0, 1]
    assert lagged > 0.1


def test_empty_range_is_an_error() -> None:
    with pytest.raises(DataError, match="no 1d trading bars"):
        generate_bars("SYN", "1d", "2024-01-06", "2024-01-07")
