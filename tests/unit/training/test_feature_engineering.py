from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.config import load_strategy_config
from ktrdr.config.features import feature_names
from ktrdr.data.synthetic import generate_bars
from ktrdr.data.timeframes import resample_bars
from ktrdr.errors import DataError
from ktrdr.training.feature_engineering import FEATURE_DTYPE, engineer_features
from ktrdr.training.fuzzy_generation import generate_fuzzy_memberships
from ktrdr.training.indicator_calculation import calculate_indicators
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")
MTF = load_strategy_config(STRATEGIES_DIR / "trend_momentum_mtf.yaml")


def run(bars: dict[str, pd.DataFrame], config: dict, **kw: str) -> pd.DataFrame:
    indicators = calculate_indicators(bars, config)
    fuzzy = generate_fuzzy_memberships(indicators, config)
    return engineer_features(fuzzy, indicators, bars, config, **kw)


def test_names_order_lags_and_warmup(eurusd_1h: pd.DataFrame) -> None:
    bars = {"1h": eurusd_1h.loc["2017-01-01":"2017-02-28"]}
    features = run(bars, REAL)
    current = [
        "rsi_oversold",
        "rsi_neutral",
        "rsi_overbought",
        "macd_hist_negative",
        "macd_hist_neutral",
        "macd_hist_positive",
    ]
    expected = current + [f"{c}_lag_1" for c in current] + [f"{c}_lag_2" for c in current]
    assert list(features.columns) == expected == feature_names(REAL, ["1h"])
    assert not features.isna().any().any()
    # MACD(12, 26, 9) needs 33 bars, lags 2 more: the first complete row is bar 35.
    assert features.index[0] == bars["1h"].index[35]
    # A lag is the previous bar's value of the same column, on that timeframe's bars.
    row = features.index[10]
    previous = features.index[features.index.get_loc(row) - 2]
    assert features.loc[row, "rsi_neutral_lag_2"] == features.loc[previous, "rsi_neutral"]


def test_features_are_float32_values_computed_in_float64(eurusd_1h: pd.DataFrame) -> None:
    bars = {"1h": eurusd_1h.loc["2017-01-01":"2017-02-28"]}
    config = {
        **REAL,
        "model": {
            **REAL["model"],
            "features": {**REAL["model"]["features"], "include_price_context": True},
        },
    }
    features = run(bars, config)
    assert set(features.dtypes) == {np.dtype(FEATURE_DTYPE)} == {np.dtype(np.float32)}
    # One value, rounded once: the float64 return of the bar, stored as float32.
    close = bars["1h"]["close"]
    row = features.index[5]
    exact = close.loc[row] / close.iloc[close.index.get_loc(row) - 1] - 1.0
    assert features.loc[row, "ret_1"] == np.float32(exact)


def test_rows_are_restricted_to_the_requested_range(eurusd_1h: pd.DataFrame) -> None:
    bars = {"1h": eurusd_1h.loc["2017-01-01":"2017-03-31"]}
    features = run(bars, REAL, start_date="2017-02-01", end_date="2017-02-28")
    assert features.index[0] == pd.Timestamp("2017-02-01 00:00", tz="UTC")
    assert features.index[-1].strftime("%Y-%m-%d") == "2017-02-28"


def test_price_context_is_scale_free() -> None:
    config = load_strategy_config(
        REAL, {"model.features.include_price_context": True, "model.features.lookback_periods": 3}
    )
    bars = generate_bars("SYN", "1h", "2024-01-01", "2024-02-15", seed=2)
    features = run({"1h": bars}, config)
    assert list(features.columns[6:10]) == ["ret_1", "ret_3", "range_hl", "body"]
    t = features.index[5]
    close = bars["close"]
    position = bars.index.get_loc(t)
    assert features.loc[t, "ret_3"] == pytest.approx(
        close.iloc[position] / close.iloc[position - 3] - 1
    )
    scaled = bars.copy()
    scaled[["open", "high", "low", "close"]] *= 50
    np.testing.assert_allclose(
        run({"1h": scaled}, config)[["ret_1", "range_hl", "body"]],
        features[["ret_1", "range_hl", "body"]],
        rtol=1e-9,
    )


def test_multi_timeframe_names_are_prefixed_once() -> None:
    hourly = generate_bars("SYN", "1h", "2024-01-01", "2024-03-31", seed=4)
    bars = {"4h": resample_bars(hourly, "1h", "4h"), "1h": hourly}
    features = run(bars, MTF)
    assert list(features.columns) == feature_names(MTF, ["4h", "1h"])
    assert features.columns[0] == "1h_ema_dist_below"
    assert "4h_ema_dist_below_lag_1" in features.columns
    assert not any(c.startswith("1h_4h") or c.startswith("4h_1h") for c in features.columns)
    assert features.index.equals(features.index.intersection(hourly.index))


def test_no_complete_rows_is_a_data_error(eurusd_1h: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no complete feature rows"):
        run({"1h": eurusd_1h.iloc[:30]}, REAL)


def test_lags_never_reach_across_a_gap() -> None:
    year = generate_bars("SYN", "1h", "2017-01-01", "2017-12-31", seed=3)
    holed = year[(year.index < "2017-03-01") | (year.index >= "2017-08-01")]
    features = run({"1h": holed}, REAL)
    after = holed.index[holed.index >= "2017-08-01"]
    alone = run({"1h": holed.loc[after]}, REAL)
    # After the gap, the features are those of the later bars alone: nothing from before it.
    pd.testing.assert_frame_equal(features.loc[features.index >= after[0]], alone)


def test_stale_higher_timeframe_context_is_dropped_or_refused(
    eurusd_1h: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    hourly = eurusd_1h.loc["2017-01-01":"2017-06-30"]
    four = resample_bars(hourly, "1h", "4h")
    complete = run({"1h": hourly, "4h": four}, MTF)
    # The 4h bars end a month early: the last month would carry old 4h features forward.
    short = four.loc[:"2017-05-31"]
    with caplog.at_level("WARNING"):
        features = run({"1h": hourly, "4h": short}, MTF)
    assert "context older than one 4h bar" in caplog.text
    assert features.index[-1] < pd.Timestamp("2017-06-01 08:00", tz="UTC")
    pd.testing.assert_frame_equal(features, complete.loc[: features.index[-1]])
    with pytest.raises(DataError, match="context older than one 4h bar"):
        run({"1h": hourly, "4h": short}, MTF, on_stale="raise")


def _new_york_broker(tmp_path: object, start: str, end: str) -> dict[str, pd.DataFrame]:
    """1h and 4h bars as a New York broker exports them: weeks from Sunday 17:00 local, 4h
    bars from 17:00 local, so in UTC both move by an hour at each DST change."""
    from pathlib import Path

    from ktrdr.data.store import load_bars
    from ktrdr.data.synthetic import write_synthetic_store

    store = Path(str(tmp_path)) / "ny"
    write_synthetic_store(
        store, ["EURUSD"], ["1h", "4h"], start, end, session_tz="America/New_York"
    )
    return {tf: load_bars("EURUSD", tf, data_dir=store) for tf in ("1h", "4h")}


def test_higher_bars_moved_by_a_dst_change_are_never_stale(tmp_path: object) -> None:
    bars = _new_york_broker(tmp_path, "2024-01-01", "2024-12-31")
    features = run(bars, MTF, on_stale="raise")  # refused across both changes before
    for change in ("2024-03-10 21:00", "2024-11-03 22:00"):  # each week's first 1h bar in UTC
        first_bar = pd.Timestamp(change, tz="UTC")
        week = features.index[(features.index >= first_bar - pd.Timedelta(days=2))]
        assert week[week >= first_bar][0] - first_bar < pd.Timedelta(hours=8), change


def test_the_as_of_join_uses_only_higher_bars_closed_by_then_on_a_dst_clock(
    tmp_path: object,
) -> None:
    """Oracle: for every base bar, the joined 4h bar is the latest whose real close (the next
    bar's open within a week, open + 4h before a weekend) is at or before the base bar's
    close, recomputed here bar by bar."""
    bars = _new_york_broker(tmp_path, "2024-03-01", "2024-03-20")
    four = bars["4h"]
    features = run(bars, MTF, on_stale="raise")
    opens = list(four.index)
    closes = []
    for i, opened in enumerate(opens):
        nxt = opens[i + 1] if i + 1 < len(opens) else None
        step = pd.Timedelta(hours=4)
        closes.append(
            nxt
            if nxt is not None and nxt - opened <= step + pd.Timedelta(hours=1)
            else opened + step
        )
    indicators = calculate_indicators(bars, MTF)
    fuzzy = generate_fuzzy_memberships(indicators, MTF)
    column = fuzzy["4h"].columns[0]
    for stamp in features.index:
        known = stamp + pd.Timedelta(hours=1)
        latest = max(i for i, close in enumerate(closes) if close <= known)
        expected = fuzzy["4h"][column].iloc[latest]
        assert features.at[stamp, f"4h_{column}"] == pytest.approx(expected, abs=1e-6), stamp


def test_a_real_hole_in_dst_shifted_higher_bars_is_still_stale(tmp_path: object) -> None:
    bars = _new_york_broker(tmp_path, "2024-01-01", "2024-04-30")
    four = bars["4h"]
    holed = four[(four.index < "2024-03-12") | (four.index >= "2024-03-14")]
    with pytest.raises(DataError, match="context older than one 4h bar"):
        run({"1h": bars["1h"], "4h": holed}, MTF, on_stale="raise")


def test_a_bar_closes_when_the_next_opens_if_a_clock_change_stretched_or_shrank_it() -> None:
    from ktrdr.training.feature_engineering import bar_closes

    opens = pd.DatetimeIndex(
        [
            "2024-11-03 00:00",
            "2024-11-03 05:00",
            "2024-11-03 09:00",
            "2024-11-03 12:00",
            "2024-11-03 16:00",
            "2024-11-05 00:00",
        ],
        tz="UTC",
    )  # 5h (fall back), 4h, 3h (spring forward), 4h, then a pause of 32h
    closes = pd.DatetimeIndex(bar_closes(opens, "4h"), tz="UTC")
    expected = [
        "2024-11-03 05:00",
        "2024-11-03 09:00",
        "2024-11-03 12:00",
        "2024-11-03 16:00",
        "2024-11-03 20:00",
        "2024-11-05 04:00",
    ]
    assert closes.equals(pd.DatetimeIndex(expected, tz="UTC"))
