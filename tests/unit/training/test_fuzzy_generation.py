from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skfuzzy

from ktrdr.config import load_strategy_config
from ktrdr.errors import DataError
from ktrdr.training.fuzzy_generation import generate_fuzzy_memberships, membership
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("triangular", [30, 50, 70]),
        ("trapezoidal", [0, 0, 20, 35]),
        ("trapezoidal", [65, 80, 100, 100]),
        ("gaussian", [50, 15]),
    ],
)
def test_nan_in_gives_nan_out(kind: str, params: list[float]) -> None:
    values = np.array([np.nan, 0.0, 25.0, 50.0, 90.0, 100.0, np.nan])
    degrees = membership(values, kind, params)
    assert np.isnan(degrees[[0, -1]]).all()
    assert ((degrees[1:-1] >= 0) & (degrees[1:-1] <= 1)).all()


def test_values_follow_scikit_fuzzy() -> None:
    x = np.linspace(-10, 110, 241)
    np.testing.assert_array_equal(
        membership(x, "triangular", [30, 50, 70]), skfuzzy.trimf(x, [30, 50, 70])
    )
    np.testing.assert_array_equal(
        membership(x, "trapezoidal", [0, 0, 20, 35]), skfuzzy.trapmf(x, [0, 0, 20, 35])
    )
    np.testing.assert_array_equal(membership(x, "gaussian", [50, 15]), skfuzzy.gaussmf(x, 50, 15))
    assert membership(np.array([50.0]), "triangular", [30, 50, 70])[0] == 1.0


def test_columns_are_named_and_ordered_by_the_strategy() -> None:
    index = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    indicators = {
        "1h": pd.DataFrame(
            {
                "rsi": [np.nan, 10, 50, 90],
                "macd_line": 0.0,
                "macd_signal": 0.0,
                "macd_hist": [np.nan, -0.001, 0, 0.001],
            },
            index=index,
        )
    }
    fuzzy = generate_fuzzy_memberships(indicators, REAL)["1h"]
    assert list(fuzzy.columns) == [
        "rsi_oversold",
        "rsi_neutral",
        "rsi_overbought",
        "macd_hist_negative",
        "macd_hist_neutral",
        "macd_hist_positive",
    ]
    assert fuzzy.iloc[0].isna().all()
    assert fuzzy.loc[index[1], "rsi_oversold"] == 1.0
    assert fuzzy.loc[index[2], "rsi_neutral"] == 1.0
    assert fuzzy.loc[index[3], "macd_hist_positive"] == 1.0


def test_missing_column_is_named() -> None:
    index = pd.date_range("2024-01-01", periods=2, freq="1h", tz="UTC")
    with pytest.raises(DataError, match=r"fuzzy_sets\.rsi: no such indicator column on 1h"):
        generate_fuzzy_memberships({"1h": pd.DataFrame({"x": [1.0, 2.0]}, index=index)}, REAL)
