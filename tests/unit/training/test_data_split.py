from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrdr.config import load_strategy_config
from ktrdr.data.store import load_bars
from ktrdr.errors import DataError, StrategyConfigError
from ktrdr.store.scaler import ScalerParams
from ktrdr.training.data_split import split_data, split_fractions, split_warnings
from ktrdr.training.feature_scaling import apply_scaler, fit_scaler, scaled_arrays
from ktrdr.training.label_generation import generate_labels
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

BASE = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")


def config(lookahead: int = 5, split: dict[str, float] | None = None) -> dict[str, Any]:
    cfg = copy.deepcopy(BASE)
    cfg["training"]["labels"]["label_lookahead"] = lookahead
    cfg["training"]["data_split"] = split
    return cfg


def symbol_data(
    rows: int, start: str = "2024-01-01", seed: int = 0, gaps: bool = False
) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=rows + 10, freq="1h", tz="UTC")
    features = pd.DataFrame(rng.normal(size=(rows + 10, 3)), index=index, columns=["a", "b", "c"])
    if gaps:  # rows dropped in the middle (e.g. missing higher-timeframe data)
        features = features.drop(index=index[rows // 3 : rows // 3 + 5])
    # Labels exist for a different set of bars (the last L have none): join on timestamp.
    labels = pd.Series(
        rng.integers(0, 3, size=rows + 10 - 4), index=index[: rows + 6], name="label"
    ).astype("int8")
    return features.iloc[:rows], labels


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(min_value=120, max_value=400),
    lookahead=st.integers(1, 12),
    second=st.booleans(),
    offset_hours=st.integers(-60, 60),
    gaps=st.booleans(),
)
def test_splits_share_one_calendar_and_are_purged_for_every_symbol(
    rows: int, lookahead: int, second: bool, offset_hours: int, gaps: bool
) -> None:
    per_symbol = {"AAA": symbol_data(rows, gaps=gaps)}
    if second:
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=offset_hours)
        per_symbol["BBB"] = symbol_data(rows + 37, start=str(start), seed=1)
    splits = split_data(per_symbol, config(lookahead))
    times = {
        name: splits.part(name).labels.index.get_level_values("timestamp")
        for name in ("train", "validation", "test")
    }
    # One calendar: every training row of any symbol precedes every validation row of any
    # symbol, and every validation row precedes every test row.
    assert times["train"].max() < times["validation"].min()
    assert times["validation"].max() < times["test"].min()
    for symbol, (features, labels) in per_symbol.items():
        joined = features.index.intersection(labels.index)
        position = {stamp: i for i, stamp in enumerate(joined)}
        for name in ("train", "validation", "test"):
            part = splits.part(name)
            assert part.features.index.equals(part.labels.index)
            if symbol not in part.labels.index.get_level_values("symbol"):
                continue
            stamps = part.labels.xs(symbol, level="symbol").index
            assert stamps.is_monotonic_increasing
            # Labels come from the label series by timestamp, never by position.
            assert (part.labels.xs(symbol, level="symbol") == labels.loc[stamps]).all()
        # Purge: no training label window (bars t+1 .. t+L of its symbol) of ANY symbol reaches
        # a validation row of this symbol; rows are a subset of bars, so L rows later is safe.
        for earlier, later in (("train", "validation"), ("validation", "test")):
            if symbol not in splits.part(later).labels.index.get_level_values("symbol"):
                continue
            first_later = splits.part(later).labels.xs(symbol, level="symbol").index[0]
            for other, (other_features, other_labels) in per_symbol.items():
                other_rows = other_features.index.intersection(other_labels.index)
                before = other_rows[other_rows < first_later]
                mine = splits.part(earlier).labels
                if other not in mine.index.get_level_values("symbol"):
                    continue
                last_earlier = mine.xs(other, level="symbol").index[-1]
                window_end_position = other_rows.get_loc(last_earlier) + lookahead
                if window_end_position < len(other_rows):
                    assert window_end_position < len(before), (symbol, other, earlier, later)
                else:  # the other symbol's rows end inside the window: hourly bars beyond it
                    beyond = window_end_position - (len(other_rows) - 1)
                    assert first_later > other_rows[-1] + pd.Timedelta(hours=beyond)
            if symbol in splits.part(earlier).labels.index.get_level_values("symbol"):
                last = splits.part(earlier).labels.xs(symbol, level="symbol").index[-1]
                assert position[first_later] - position[last] > lookahead


def test_correlated_symbols_with_different_histories_are_cut_at_the_same_times(
    sample_data_dir: Path,
) -> None:
    # Two correlated FX pairs, the second starting three months later: each split covers the
    # same period for both, so neither trains on the other's validation or test period.
    eurusd = load_bars("EURUSD", "1h", data_dir=sample_data_dir)
    rng = np.random.default_rng(0)
    noise = 1 + rng.normal(0, 2e-4, len(eurusd))
    correlated = eurusd.mul(noise, axis=0)
    correlated["high"] = correlated[["open", "high", "low", "close"]].max(axis=1)
    correlated["low"] = correlated[["open", "high", "low", "close"]].min(axis=1)
    correlated = correlated.loc["2017-04-01":]
    cfg = config(24)
    per_symbol = {}
    for symbol, bars in (("EURUSD", eurusd), ("EURUSD2", correlated)):
        labels = generate_labels(bars, cfg, timeframe="1h")
        features = pd.DataFrame({"f": bars["close"].pct_change()}, index=bars.index).dropna()
        per_symbol[symbol] = (features, labels)
    splits = split_data(per_symbol, cfg)
    bounds = splits.boundaries
    for name in ("validation", "test"):
        starts = {s: pd.Timestamp(b["start"]) for s, b in bounds[name].items()}
        # Both start within the purge of the same cut: 24 bars plus at most a weekend.
        assert abs(starts["EURUSD"] - starts["EURUSD2"]) <= pd.Timedelta(days=3)
    assert pd.Timestamp(bounds["train"]["EURUSD2"]["end"]) <= pd.Timestamp(
        bounds["train"]["EURUSD"]["end"]
    )
    assert max(pd.Timestamp(b["end"]) for b in bounds["train"].values()) < min(
        pd.Timestamp(b["start"]) for b in bounds["validation"].values()
    )
    # The later symbol has fewer training rows: the calendar, not its own rows, sets the cut.
    assert bounds["train"]["EURUSD2"]["rows"] < bounds["train"]["EURUSD"]["rows"]


def test_a_symbol_without_rows_in_a_split_is_reported_not_fatal() -> None:
    early = symbol_data(300)
    late = symbol_data(60, start="2024-01-12", seed=2)  # only the test period
    splits = split_data({"AAA": early, "BBB": late}, config(3))
    assert splits.boundaries["train"]["BBB"] == {"start": None, "end": None, "rows": 0}
    assert splits.boundaries["test"]["BBB"]["rows"] > 0
    assert splits.class_counts["train"]["BBB"] == {"BUY": 0, "HOLD": 0, "SELL": 0}


def test_boundaries_and_class_counts_per_symbol() -> None:
    splits = split_data({"AAA": symbol_data(200), "BBB": symbol_data(120, seed=3)}, config(5))
    assert set(splits.boundaries["train"]) == {"AAA", "BBB"}
    assert splits.boundaries["train"]["AAA"]["rows"] == 140
    total = sum(splits.class_counts["test"]["all"].values())
    assert total == len(splits.test)
    assert splits.class_counts["test"]["all"]["BUY"] == (
        splits.class_counts["test"]["AAA"]["BUY"] + splits.class_counts["test"]["BBB"]["BUY"]
    )
    assert splits.train.features.index.names == ["symbol", "timestamp"]


def test_empty_split_names_symbol_and_reason() -> None:
    with pytest.raises(DataError, match=r"AAA: the validation split is empty.*purge gap of 24"):
        split_data({"AAA": symbol_data(100)}, config(24))


def test_training_split_with_one_class_is_an_error() -> None:
    features, labels = symbol_data(200)
    labels = labels * 0 + 1
    with pytest.raises(DataError, match="training split holds only HOLD labels"):
        split_data({"AAA": (features, labels.astype("int8"))}, config(3))


def test_validation_split_rules() -> None:
    assert split_fractions(config(split=None), 0.1) == {
        "train": 0.8,
        "validation": 0.1,
        "test": 0.1,
    }
    assert split_fractions(config(split=None)) == {"train": 0.7, "validation": 0.15, "test": 0.15}
    configured = {"train": 0.6, "validation": 0.2, "test": 0.2}
    assert split_fractions(config(split=configured), 0.2) == configured
    with pytest.raises(StrategyConfigError, match=r"contradicts training\.data_split"):
        split_fractions(config(split=configured), 0.1)


def test_scaler_statistics_ignore_validation_and_test_rows() -> None:
    splits = split_data({"AAA": symbol_data(300)}, config(5))
    params = fit_scaler(splits.train.features)
    features, labels = symbol_data(300)
    last_train = splits.train.labels.index.get_level_values("timestamp")[-1]
    changed = features.copy()
    changed.loc[changed.index > last_train] *= 1000  # validation and test rows only
    again = split_data({"AAA": (changed, labels)}, config(5))
    assert fit_scaler(again.train.features) == params
    scaled = apply_scaler(splits.train.features, params)
    assert np.allclose(scaled.mean(), 0) and np.allclose(scaled.std(ddof=0), 1)


def test_constant_columns_get_scale_one_and_params_round_trip() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "never_fires": [0.0, 0.0, 0.0]})
    params = fit_scaler(frame)
    assert params.scales[1] == 1.0
    assert apply_scaler(frame, params)["never_fires"].tolist() == [0.0, 0.0, 0.0]
    assert ScalerParams.from_dict(params.to_dict()) == params
    with pytest.raises(DataError, match="missing: never_fires"):
        apply_scaler(frame[["a"]], params)
    with pytest.raises(DataError, match="NaN"):
        fit_scaler(frame.assign(a=[1.0, np.nan, 2.0]))


def test_scaled_arrays_give_the_trainer_float32_features_and_int64_labels() -> None:
    splits = split_data({"AAA": symbol_data(200)}, config(5))
    params = fit_scaler(splits.train.features)
    x, y = scaled_arrays(splits.train.features, splits.train.labels, params)
    assert x.dtype == np.float32 and y.dtype == np.int64 and len(x) == len(y)
    np.testing.assert_allclose(x, apply_scaler(splits.train.features, params).to_numpy(), rtol=1e-6)
    raw, _ = scaled_arrays(splits.train.features, splits.train.labels, None)
    np.testing.assert_allclose(raw, splits.train.features.to_numpy(), rtol=1e-6)


def test_float32_features_stay_float32_and_the_scaler_is_exact_in_float64() -> None:
    features, labels = symbol_data(400)
    features = features.astype(np.float32) * np.float32(1000) + np.float32(5000)
    splits = split_data({"AAA": (features, labels)}, config(5))
    assert set(splits.train.features.dtypes) == {np.dtype(np.float32)}
    params = fit_scaler(splits.train.features)
    # Each column reduced on its own in float64, as numpy reduces a contiguous column.
    exact = np.asfortranarray(splits.train.features.to_numpy(dtype=np.float64))
    assert params.centers == tuple(exact.mean(axis=0))
    assert params.scales == tuple(exact.std(axis=0))
    # The trainer's arrays and apply_scaler agree to the bit (what predict does on new bars).
    x, _ = scaled_arrays(splits.test.features, splits.test.labels, params)
    same = apply_scaler(splits.test.features, params).to_numpy().astype(np.float32)
    assert np.array_equal(x, same)


def test_a_bad_training_feature_is_named() -> None:
    features, labels = symbol_data(300)
    features.iloc[10, 1] = np.inf
    splits = split_data({"AAA": (features, labels)}, config(5))
    with pytest.raises(DataError, match="training feature 'b' holds NaN or infinite"):
        fit_scaler(splits.train.features)


def test_splits_without_features_keep_what_evaluation_and_results_read() -> None:
    splits = split_data({"AAA": symbol_data(300), "BBB": symbol_data(300, seed=1)}, config(5))
    light = splits.without_features()
    for name in ("train", "validation", "test"):
        full, kept = splits.part(name), light.part(name)
        assert kept.features.shape == (len(full), 0)
        assert kept.features.index.equals(full.features.index)
        assert kept.labels is full.labels and len(kept) == len(full)
    assert (light.boundaries, light.class_counts) == (splits.boundaries, splits.class_counts)
    assert (light.feature_names, light.warnings) == (splits.feature_names, splits.warnings)


def test_degenerate_and_tiny_splits_are_warned_about() -> None:
    # A 4h run had BUY 4 / HOLD 2222 / SELL 7 in silence.
    counts = {
        "train": {"all": {"BUY": 400, "HOLD": 500, "SELL": 300}},
        "validation": {"all": {"BUY": 40, "HOLD": 50, "SELL": 30}},
        "test": {"all": {"BUY": 4, "HOLD": 2222, "SELL": 7}},
    }
    warnings = split_warnings(counts)
    assert any("the test split is 99.5% HOLD" in w for w in warnings)
    assert any("fewer than 30 rows of BUY, SELL" in w for w in warnings)
    counts["test"]["all"] = {"BUY": 40, "HOLD": 50, "SELL": 30}
    assert split_warnings(counts) == [
        "the test split holds only 120 rows (under 200): its accuracy is too uncertain to judge "
        "the model; load a longer range"
    ]
    counts["test"]["all"] = {"BUY": 400, "HOLD": 500, "SELL": 300}
    assert split_warnings(counts) == []
    # 91% HOLD in training (validate --preview said "No warnings"): always answering HOLD
    # scores 91%, which the model learns first.
    counts["train"]["all"] = {"BUY": 45, "HOLD": 910, "SELL": 45}
    [dominant] = split_warnings(counts)
    assert dominant.startswith("the train split is 91.0% HOLD (BUY 45/HOLD 910/SELL 45)")
    # A run judged on later bars (a walk-forward fold) hears nothing of its own test share,
    # and still hears of its training split.
    counts["test"]["all"] = {"BUY": 4, "HOLD": 2222, "SELL": 7}
    assert len(split_warnings(counts)) == 3
    assert split_warnings(counts, include_test=False) == [dominant]


def test_release_inputs_drops_each_symbol_and_splits_the_same() -> None:
    data = {s: symbol_data(500, seed=n, gaps=n == 1) for n, s in enumerate(("AAA", "BBB", "CCC"))}
    kept = split_data(dict(data), config(5))
    handed_over = dict(data)
    released = split_data(handed_over, config(5), release_inputs=True)
    assert handed_over == {}
    for name in ("train", "validation", "test"):
        a, b = kept.part(name), released.part(name)
        assert np.array_equal(a.values, b.values)
        assert a.values.flags.c_contiguous
        pd.testing.assert_series_equal(a.labels, b.labels)
        pd.testing.assert_frame_equal(a.features, b.features)
    assert kept.boundaries == released.boundaries
    assert kept.class_counts == released.class_counts


def test_release_inputs_needs_a_dict_it_may_empty() -> None:
    from types import MappingProxyType

    with pytest.raises(TypeError, match="release_inputs needs per_symbol as a dict"):
        split_data(MappingProxyType({"AAA": symbol_data(300)}), config(5), release_inputs=True)


def test_the_symbol_level_keeps_the_run_order() -> None:
    data = {s: symbol_data(400, seed=n) for n, s in enumerate(("ZZZ", "AAA"))}
    splits = split_data(data, config(5))
    symbols = splits.train.index.get_level_values("symbol")
    assert list(dict.fromkeys(symbols)) == ["ZZZ", "AAA"]
    # Each symbol's rows sit under its own name: AAA's first training row is AAA's first bar.
    first = splits.train.features.loc["AAA"].iloc[0].to_numpy()
    assert np.array_equal(first, data["AAA"][0].iloc[0].to_numpy(dtype=np.float32))
