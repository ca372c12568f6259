"""One contract for every pipeline step 2-6 (docs/architecture.md: the twelve steps, leakage rules):

arguments are not modified, the same inputs give the same outputs, empty input raises DataError,
and (steps 2-5) the output at bar t is the same whether later bars exist or not: cut after t for
indicators, memberships and features; after t+L for labels.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktrdr.config import load_strategy_config
from ktrdr.data.synthetic import generate_bars
from ktrdr.data.timeframes import parse_timeframe, resample_bars
from ktrdr.errors import DataError
from ktrdr.training.data_split import split_data
from ktrdr.training.feature_engineering import engineer_features
from ktrdr.training.fuzzy_generation import generate_fuzzy_memberships
from ktrdr.training.indicator_calculation import calculate_indicators
from ktrdr.training.label_generation import generate_labels
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")
MTF = load_strategy_config(STRATEGIES_DIR / "trend_momentum_mtf.yaml")
LOOKAHEAD = REAL["training"]["labels"]["label_lookahead"]
HYPOTHESIS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def indicators_of(bars: dict[str, pd.DataFrame], config: dict[str, Any]) -> dict[str, pd.DataFrame]:
    return calculate_indicators(bars, config, symbol="T")


def fuzzy_of(bars: dict[str, pd.DataFrame], config: dict[str, Any]) -> dict[str, pd.DataFrame]:
    return generate_fuzzy_memberships(indicators_of(bars, config), config)


def features_of(bars: dict[str, pd.DataFrame], config: dict[str, Any]) -> pd.DataFrame:
    indicators = indicators_of(bars, config)
    fuzzy = generate_fuzzy_memberships(indicators, config)
    return engineer_features(fuzzy, indicators, bars, config)


@dataclass(frozen=True)
class Step:
    name: str
    make_args: Callable[[dict[str, pd.DataFrame], dict[str, Any]], tuple[Any, ...]]
    run: Callable[..., Any]
    empty_args: Callable[[dict[str, Any]], tuple[Any, ...]]


def _empty_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex([], tz="UTC"),
    )


def _split_args(bars: dict[str, pd.DataFrame], config: dict[str, Any]) -> tuple[Any, ...]:
    return ({"T": (features_of(bars, config), generate_labels(bars["1h"], config))}, config)


STEPS = [
    Step(
        "indicators",
        lambda b, c: (b, c),
        calculate_indicators,
        lambda c: ({"1h": _empty_bars()}, c),
    ),
    Step(
        "fuzzy",
        lambda b, c: (indicators_of(b, c), c),
        generate_fuzzy_memberships,
        lambda c: ({"1h": pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))}, c),
    ),
    Step(
        "features",
        lambda b, c: (fuzzy_of(b, c), indicators_of(b, c), b, c),
        engineer_features,
        lambda c: ({}, {}, {}, c),
    ),
    Step("labels", lambda b, c: (b["1h"], c), generate_labels, lambda c: (_empty_bars(), c)),
    Step("split", _split_args, split_data, lambda c: ({}, c)),
]


@pytest.fixture(scope="module")
def sample_q1(eurusd_1h: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"1h": eurusd_1h.loc["2017-01-01":"2017-03-31"]}


def _equal(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _equal(a[key], b[key])
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _equal(x, y)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
    elif isinstance(a, pd.Index):
        pd.testing.assert_index_equal(a, b)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif hasattr(a, "__dataclass_fields__"):
        for name in a.__dataclass_fields__:
            _equal(getattr(a, name), getattr(b, name))
    else:
        assert a == b


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_arguments_are_not_modified(step: Step, sample_q1: dict[str, pd.DataFrame]) -> None:
    args = step.make_args(sample_q1, REAL)
    before = copy.deepcopy(args)
    step.run(*args)
    _equal(args, before)


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_same_inputs_same_outputs(step: Step, sample_q1: dict[str, pd.DataFrame]) -> None:
    args = step.make_args(sample_q1, REAL)
    _equal(step.run(*args), step.run(*args))


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_empty_input_raises_data_error(step: Step) -> None:
    with pytest.raises(DataError):
        step.run(*step.empty_args(REAL))


# --- causality (docs/architecture.md: leakage rules) ----------------------------------------------


def _assert_prefix_equal(
    full: pd.DataFrame | pd.Series, cut: pd.DataFrame | pd.Series, until: pd.Timestamp
) -> None:
    a = full.loc[:until]
    b = cut.loc[:until]
    assert a.index.equals(b.index)
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=0, atol=1e-12, equal_nan=True
    )


SYNTHETIC = {"1h": generate_bars("SYN", "1h", "2023-01-01", "2023-04-30", seed=31)}


@pytest.mark.parametrize("source", ["eurusd", "synthetic"])
@HYPOTHESIS
@given(fraction=st.floats(min_value=0.2, max_value=0.95))
def test_steps_2_to_4_are_causal(
    source: str, fraction: float, sample_q1: dict[str, pd.DataFrame]
) -> None:
    bars = sample_q1 if source == "eurusd" else SYNTHETIC
    base = bars["1h"]
    t = base.index[int(fraction * (len(base) - 1))]
    cut = {"1h": base.loc[:t]}
    for full, partial in (
        (indicators_of(bars, REAL)["1h"], indicators_of(cut, REAL)["1h"]),
        (fuzzy_of(bars, REAL)["1h"], fuzzy_of(cut, REAL)["1h"]),
        (features_of(bars, REAL), features_of(cut, REAL)),
    ):
        _assert_prefix_equal(full, partial, t)


@pytest.mark.parametrize("source", ["eurusd", "synthetic"])
@HYPOTHESIS
@given(fraction=st.floats(min_value=0.1, max_value=0.9))
def test_labels_depend_only_on_the_next_lookahead_bars(
    source: str, fraction: float, sample_q1: dict[str, pd.DataFrame]
) -> None:
    base = (sample_q1 if source == "eurusd" else SYNTHETIC)["1h"]
    position = int(fraction * (len(base) - LOOKAHEAD - 1))
    t = base.index[position]
    cut = base.iloc[: position + LOOKAHEAD + 1]  # bars up to t+L
    full_labels = generate_labels(base, REAL)
    cut_labels = generate_labels(cut, REAL)
    assert cut_labels.index[-1] == t
    _assert_prefix_equal(full_labels, cut_labels, t)


# --- multi-timeframe (docs/architecture.md: leakage rules) ----------------------------------------

MTF_3 = load_strategy_config(MTF, {"training_data.timeframes": ["1h", "4h", "1d"]})


@pytest.fixture(scope="module")
def three_timeframes() -> dict[str, pd.DataFrame]:
    hourly = generate_bars("SYN", "1h", "2023-01-01", "2023-06-30", seed=5)
    return {
        "1h": hourly,
        "4h": resample_bars(hourly, "1h", "4h"),
        "1d": resample_bars(hourly, "1h", "1d"),
    }


@HYPOTHESIS
@given(fraction=st.floats(min_value=0.3, max_value=0.95))
def test_multi_timeframe_rows_use_only_closed_higher_bars(
    fraction: float, three_timeframes: dict[str, pd.DataFrame]
) -> None:
    base = three_timeframes["1h"]
    t = base.index[int(fraction * (len(base) - 1))]
    known_at = t + parse_timeframe("1h")
    # What a live system would have when the base bar at t closes: base bars up to t, and only
    # the higher bars that have closed by then.
    cut = {"1h": base.loc[:t]}
    for timeframe in ("4h", "1d"):
        frame = three_timeframes[timeframe]
        cut[timeframe] = frame[frame.index + parse_timeframe(timeframe) <= known_at]
    _assert_prefix_equal(features_of(three_timeframes, MTF_3), features_of(cut, MTF_3), t)


def test_a_higher_bar_joins_exactly_when_it_closes(
    three_timeframes: dict[str, pd.DataFrame],
) -> None:
    features = features_of(three_timeframes, MTF_3)
    fuzzy = fuzzy_of(three_timeframes, MTF_3)
    four_hour = fuzzy["4h"]["adx_strong"]
    # The 4h bar opening 08:00 closes at 12:00: it is first used by the 1h bar opening 11:00
    # (which closes at 12:00), and the 10:00 bar still sees the 4h bar that opened at 04:00.
    day = features.index[len(features) // 2].normalize()
    if day.day_of_week >= 5:
        day += pd.Timedelta(days=2)
    at = {h: day + pd.Timedelta(hours=h) for h in (10, 11)}
    assert features.loc[at[11], "4h_adx_strong"] == four_hour.loc[day + pd.Timedelta(hours=8)]
    assert features.loc[at[10], "4h_adx_strong"] == four_hour.loc[day + pd.Timedelta(hours=4)]
    daily = fuzzy["1d"]["adx_strong"]
    # The daily bar of `day` closes at midnight: every hour of `day` still sees the previous one.
    previous_day = daily.index[daily.index < day][-1]
    assert features.loc[at[11], "1d_adx_strong"] == daily.loc[previous_day]
