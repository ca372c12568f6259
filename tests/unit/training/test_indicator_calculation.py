"""Every registry entry against a direct TA-Lib call; RSI and MACD against hand-worked values."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib

from ktrdr.config import load_strategy_config
from ktrdr.data.store import load_bars
from ktrdr.data.synthetic import generate_bars
from ktrdr.errors import DataError
from ktrdr.indicators.registry import REGISTRY, resolve_params
from ktrdr.training.indicator_calculation import calculate_indicators
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

BASE = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")


def config_with(indicator: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["indicators"] = [indicator]
    raw["fuzzy_sets"] = {columns[0]: {"any": {"type": "gaussian", "parameters": [0, 1e9]}}}
    return load_strategy_config(raw)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_bars("SYN", "1h", "2024-01-01", "2024-03-01", seed=12)


def _a(bars: pd.DataFrame, column: str) -> np.ndarray:
    return bars[column].to_numpy(dtype="float64")


# type -> (config params, {output column: direct TA-Lib computation}); written out by hand so that
# a wrong name, parameter, source or output index in the registry fails here.
Expected = Callable[[pd.DataFrame], dict[str, np.ndarray]]
CASES: dict[str, tuple[dict[str, Any], Expected]] = {
    "rsi": ({"period": 9, "source": "high"}, lambda b: {"x": talib.RSI(_a(b, "high"), 9)}),
    "macd": (
        {"fast_period": 8, "slow_period": 21, "signal_period": 5, "source": "open"},
        lambda b: dict(
            zip(
                ["x_line", "x_signal", "x_hist"],
                talib.MACD(_a(b, "open"), fastperiod=8, slowperiod=21, signalperiod=5),
                strict=True,
            )
        ),
    ),
    "sma": ({"period": 7, "source": "low"}, lambda b: {"x": talib.SMA(_a(b, "low"), 7)}),
    "ema": ({"period": 11, "source": "close"}, lambda b: {"x": talib.EMA(_a(b, "close"), 11)}),
    "bbands": (
        {"period": 15, "std_dev": 1.5, "source": "close"},
        lambda b: _bbands(_a(b, "close"), 15, 1.5),
    ),
    "atr": (
        {"period": 10},
        lambda b: {"x": talib.ATR(_a(b, "high"), _a(b, "low"), _a(b, "close"), 10)},
    ),
    "stoch": (
        {"fastk_period": 9, "slowk_period": 4, "slowd_period": 2},
        lambda b: dict(
            zip(
                ["x_k", "x_d"],
                talib.STOCH(
                    _a(b, "high"),
                    _a(b, "low"),
                    _a(b, "close"),
                    fastk_period=9,
                    slowk_period=4,
                    slowk_matype=0,
                    slowd_period=2,
                    slowd_matype=0,
                ),
                strict=True,
            )
        ),
    ),
    "williams_r": (
        {"period": 12},
        lambda b: {"x": talib.WILLR(_a(b, "high"), _a(b, "low"), _a(b, "close"), 12)},
    ),
    "roc": ({"period": 6, "source": "open"}, lambda b: {"x": talib.ROC(_a(b, "open"), 6)}),
    "cci": (
        {"period": 13},
        lambda b: {"x": talib.CCI(_a(b, "high"), _a(b, "low"), _a(b, "close"), 13)},
    ),
    "adx": (
        {"period": 8},
        lambda b: {"x": talib.ADX(_a(b, "high"), _a(b, "low"), _a(b, "close"), 8)},
    ),
    "obv": ({"source": "close", "period": 5}, lambda b: {"x": _obv_change(b, 5)}),
    "mfi": (
        {"period": 10},
        lambda b: {
            "x": talib.MFI(_a(b, "high"), _a(b, "low"), _a(b, "close"), _a(b, "volume"), 10)
        },
    ),
}


def _obv_change(bars: pd.DataFrame, window: int) -> np.ndarray:
    running = talib.OBV(_a(bars, "close"), _a(bars, "volume"))
    return np.concatenate([np.full(window, np.nan), running[window:] - running[:-window]])


def _bbands(price: np.ndarray, period: int, dev: float) -> dict[str, np.ndarray]:
    upper, middle, lower = talib.BBANDS(price, period, dev, dev, 0)
    return {
        "x_upper": upper,
        "x_middle": middle,
        "x_lower": lower,
        "x_pctb": (price - lower) / (upper - lower),
        "x_bandwidth": (upper - lower) / middle,
    }


def test_every_registry_entry_has_a_case() -> None:
    assert set(CASES) == set(REGISTRY)


@pytest.mark.parametrize("indicator_type", sorted(CASES))
def test_matches_a_direct_talib_call(bars: pd.DataFrame, indicator_type: str) -> None:
    params, expected_fn = CASES[indicator_type]
    spec = REGISTRY[indicator_type]
    config = config_with({"name": "x", "type": indicator_type, **params}, spec.output_columns("x"))
    result = calculate_indicators({"1h": bars}, config, symbol="SYN")["1h"]
    expected = expected_fn(bars)
    assert list(result.columns) == list(expected)
    for column, values in expected.items():
        np.testing.assert_allclose(
            result[column].to_numpy(), values, rtol=0, atol=1e-12, equal_nan=True, err_msg=column
        )
    assert (result.index == bars.index).all()


@pytest.mark.parametrize(
    ("indicator_type", "params", "unit"),
    [
        ("sma", {"period": 7}, "level"),
        ("ema", {"period": 7}, "level"),
        ("atr", {"period": 7}, "difference"),
        ("macd", {}, "difference"),
        ("bbands", {"period": 7}, "level"),
    ],
)
def test_normalize_close_makes_price_units_scale_free(
    bars: pd.DataFrame, indicator_type: str, params: dict[str, Any], unit: str
) -> None:
    spec = REGISTRY[indicator_type]
    columns = spec.output_columns("x")
    raw = calculate_indicators(
        {"1h": bars}, config_with({"name": "x", "type": indicator_type, **params}, columns)
    )["1h"]
    normalised = calculate_indicators(
        {"1h": bars},
        config_with({"name": "x", "type": indicator_type, **params, "normalize": "close"}, columns),
    )["1h"]
    close = bars["close"].to_numpy()
    column = columns[0]
    expected = close / raw[column] - 1 if unit == "level" else raw[column] / close
    np.testing.assert_allclose(normalised[column], expected, equal_nan=True)
    # Scale-free: multiplying every price by 100 leaves the normalised values unchanged.
    scaled = bars.copy()
    scaled[["open", "high", "low", "close"]] *= 100
    rescaled = calculate_indicators(
        {"1h": scaled},
        config_with({"name": "x", "type": indicator_type, **params, "normalize": "close"}, columns),
    )["1h"]
    np.testing.assert_allclose(
        rescaled[column], normalised[column], rtol=1e-9, atol=1e-12, equal_nan=True
    )


# A short series worked through by hand (Wilder's RSI, standard EMAs), independent of TA-Lib.
CLOSES = np.array(
    [
        44.34,
        44.09,
        44.15,
        43.61,
        44.33,
        44.83,
        45.10,
        45.42,
        45.84,
        46.08,
        45.89,
        46.03,
        45.61,
        46.28,
        46.28,
        46.00,
        46.03,
        46.41,
        46.22,
        45.64,
        46.21,
        46.25,
        45.71,
        46.45,
        45.78,
        45.35,
        44.03,
        44.18,
        44.22,
        44.57,
        43.42,
        42.66,
        43.13,
    ]
)


def _wilder_rsi(close: np.ndarray, period: int) -> np.ndarray:
    out = np.full(len(close), np.nan)
    change = np.diff(close)
    gain = np.clip(change, 0, None)
    loss = np.clip(-change, 0, None)
    avg_gain, avg_loss = gain[:period].mean(), loss[:period].mean()
    out[period] = 100 - 100 / (1 + avg_gain / avg_loss)
    for i in range(period, len(change)):
        avg_gain = (avg_gain * (period - 1) + gain[i]) / period
        avg_loss = (avg_loss * (period - 1) + loss[i]) / period
        out[i + 1] = 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def _ema(values: np.ndarray, period: int, first: int) -> np.ndarray:
    """EMA seeded with the mean of the ``period`` values ending at index ``first``."""
    out = np.full(len(values), np.nan)
    alpha = 2 / (period + 1)
    out[first] = values[first - period + 1 : first + 1].mean()
    for i in range(first + 1, len(values)):
        out[i] = alpha * values[i] + (1 - alpha) * out[i - 1]
    return out


def _short_bars(close: np.ndarray) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close + 0.1, "low": close - 0.1, "close": close, "volume": 1.0},
        index=index,
    )


def test_rsi_matches_wilder_by_hand() -> None:
    config = config_with({"name": "rsi", "type": "rsi", "period": 14}, ["rsi"])
    result = calculate_indicators({"1h": _short_bars(CLOSES)}, config)["1h"]["rsi"].to_numpy()
    np.testing.assert_allclose(result, _wilder_rsi(CLOSES, 14), atol=1e-9, equal_nan=True)
    assert np.isnan(result[:14]).all() and 0 < result[14] < 100


def test_macd_matches_emas_by_hand() -> None:
    fast, slow, signal = 3, 6, 4
    config = config_with(
        {
            "name": "m",
            "type": "macd",
            "fast_period": fast,
            "slow_period": slow,
            "signal_period": signal,
        },
        ["m_line"],
    )
    result = calculate_indicators({"1h": _short_bars(CLOSES)}, config)["1h"]
    # Both EMAs start together at the first bar where the slow one exists (index slow-1).
    line = _ema(CLOSES, fast, slow - 1) - _ema(CLOSES, slow, slow - 1)
    signal_line = _ema(np.nan_to_num(line), signal, slow - 1 + signal - 1)
    start = slow - 1 + signal - 1
    np.testing.assert_allclose(result["m_line"].to_numpy()[start:], line[start:], atol=1e-9)
    np.testing.assert_allclose(
        result["m_signal"].to_numpy()[start:], signal_line[start:], atol=1e-9
    )
    np.testing.assert_allclose(
        result["m_hist"].to_numpy()[start:], line[start:] - signal_line[start:], atol=1e-9
    )
    assert np.isnan(result["m_line"].to_numpy()[:start]).all()


def test_volume_indicator_on_zero_volume_names_indicator_symbol_and_timeframe(
    bars: pd.DataFrame,
) -> None:
    config = config_with({"name": "flow", "type": "mfi", "period": 10}, ["flow"])
    with pytest.raises(DataError, match=r"'flow' \(mfi\) needs volume.*EURUSD 4h"):
        calculate_indicators({"4h": bars.assign(volume=0.0)}, config, symbol="EURUSD")


@pytest.mark.parametrize("indicator_type", sorted(REGISTRY))
def test_values_do_not_depend_on_where_loading_started(
    sample_data_dir: Path, indicator_type: str
) -> None:
    # Training loads history from one bar, prediction from another: once stable_history_bars
    # have passed, both must see the same value (docs/data-and-verdicts.md). GOOGL has volume.
    bars = load_bars("GOOGL", "1d", data_dir=sample_data_dir)
    spec = REGISTRY[indicator_type]
    params, _ = resolve_params(spec, {})
    config = config_with({"name": "x", "type": indicator_type, **params}, spec.output_columns("x"))
    stable = spec.stable_history_bars(params)
    offset = 500
    early = calculate_indicators({"1d": bars}, config)["1d"].iloc[offset + stable :]
    late = calculate_indicators({"1d": bars.iloc[offset:]}, config)["1d"].iloc[stable:]
    assert len(early) == len(late) > 1000
    for column in early.columns:
        a, b = early[column].to_numpy(), late[column].to_numpy()
        assert not np.isnan(a).any() and not np.isnan(b).any(), column
        scale = np.abs(a).max()
        assert np.abs(a - b).max() <= 1e-4 * scale, column


def test_indicators_restart_after_a_gap() -> None:
    year = generate_bars("SYN", "1h", "2017-01-01", "2017-12-31", seed=3)
    holed = year[(year.index < "2017-03-01") | (year.index >= "2017-08-01")]
    config = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")
    before = holed[holed.index < "2017-03-01"]
    after = holed[holed.index >= "2017-08-01"]
    joined = calculate_indicators({"1h": holed}, config)["1h"]
    # Computed on the bars after the gap alone: the same values, warm-up NaN included.
    alone = calculate_indicators({"1h": after}, config)["1h"]
    pd.testing.assert_frame_equal(joined.loc[after.index], alone)
    pd.testing.assert_frame_equal(
        joined.loc[before.index], calculate_indicators({"1h": before}, config)["1h"]
    )
    warmup = REGISTRY["rsi"].warmup_bars(config["indicators"][0])
    assert joined.loc[after.index[:warmup], "rsi"].isna().all()
    assert joined.loc[after.index[warmup:], "rsi"].notna().all()
