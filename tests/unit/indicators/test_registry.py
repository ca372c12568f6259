from __future__ import annotations

import pytest

from ktrdr.indicators.registry import REGISTRY, resolve_params

pytestmark = pytest.mark.unit

REQUIRED = {
    "rsi",
    "macd",
    "sma",
    "ema",
    "bbands",
    "atr",
    "stoch",
    "williams_r",
    "roc",
    "cci",
    "adx",
    "obv",
    "mfi",
}


def test_registry_holds_every_required_indicator() -> None:
    assert set(REGISTRY) >= REQUIRED


@pytest.mark.parametrize("indicator_type", sorted(REGISTRY))
def test_defaults_resolve_and_warmup_comes_from_talib(indicator_type: str) -> None:
    spec = REGISTRY[indicator_type]
    params, errors = resolve_params(spec, {})
    assert errors == []
    assert spec.warmup_bars(params) >= 0
    assert spec.stable_history_bars(params) >= spec.warmup_bars(params)


def test_warmup_follows_the_parameters() -> None:
    macd = REGISTRY["macd"]
    params, _ = resolve_params(macd, {"fast_period": 12, "slow_period": 26, "signal_period": 9})
    assert macd.warmup_bars(params) == 33
    rsi = REGISTRY["rsi"]
    assert rsi.warmup_bars({"period": 14, "source": "close"}) == 14
    assert rsi.stable_history_bars({"period": 14, "source": "close"}) == 14 + 140


def test_output_columns() -> None:
    assert REGISTRY["macd"].output_columns("macd") == ["macd_line", "macd_signal", "macd_hist"]
    assert REGISTRY["bbands"].output_columns("bb") == [
        "bb_upper",
        "bb_middle",
        "bb_lower",
        "bb_pctb",
        "bb_bandwidth",
    ]
    assert REGISTRY["rsi"].output_columns("rsi_fast") == ["rsi_fast"]


def test_errors_name_the_key() -> None:
    _, errors = resolve_params(REGISTRY["rsi"], {"perod": 3, "period": True})
    assert ("perod", "not a parameter of rsi (it takes period, source)") in errors
    assert any(key == "period" and "number" in message for key, message in errors)
    _, errors = resolve_params(REGISTRY["obv"], {"fast_period": 3})
    assert errors[0][0] == "fast_period"
