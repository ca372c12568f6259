from __future__ import annotations

import re

import pandas as pd
import pytest

from ktrdr.data.synthetic import generate_bars
from ktrdr.data.validation import (
    check_date_range,
    check_feature_frame,
    check_ohlcv,
    check_symbol,
)
from ktrdr.errors import DataError

pytestmark = pytest.mark.unit


@pytest.fixture
def bars() -> pd.DataFrame:
    return generate_bars("SYN", "1h", "2024-01-01", "2024-01-10", seed=3)


def test_valid_bars_pass_unchanged(bars: pd.DataFrame) -> None:
    assert check_ohlcv(bars, "test", "1h") is bars


def test_zero_volume_is_valid(bars: pd.DataFrame) -> None:
    check_ohlcv(bars.assign(volume=0.0), "test")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("low", 10.0, "high below low"),
        ("close", 0.0, "non-positive prices"),
        ("open", -1.0, "non-positive prices"),
        ("volume", -5.0, "negative volume"),
        ("open", 50.0, r"open or close outside \[low, high\]"),
    ],
)
def test_impossible_bars_are_named(
    bars: pd.DataFrame, column: str, value: float, message: str
) -> None:
    broken = bars.copy()
    broken.iloc[5, broken.columns.get_loc(column)] = value
    where = re.escape(f"1 bar(s) at {bars.index[5]}")
    with pytest.raises(DataError, match=f"test: {message}, {where}"):
        check_ohlcv(broken, "test")


def test_duplicate_and_unsorted_timestamps(bars: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="duplicate timestamps"):
        check_ohlcv(pd.concat([bars, bars.iloc[[3]]]).sort_index(), "test")
    with pytest.raises(DataError, match="out of order"):
        check_ohlcv(bars.iloc[::-1], "test")


def test_naive_index_and_missing_columns(bars: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="must be UTC"):
        check_ohlcv(bars.tz_localize(None), "test")
    with pytest.raises(DataError, match="missing column"):
        check_ohlcv(bars.drop(columns="volume"), "test")
    with pytest.raises(DataError, match="no bars"):
        check_ohlcv(bars.iloc[:0], "test")


def test_spacing_must_match_timeframe(bars: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"median bar spacing is 0 days 01:00:00.*timeframe 4h"):
        check_ohlcv(bars, "test", "4h")


@pytest.mark.parametrize("symbol", ["../x", "a/b", "", "..", "x" * 21, "EUR USD", None])
def test_symbols_with_path_tricks_are_rejected(symbol: object) -> None:
    with pytest.raises(DataError, match="invalid symbol"):
        check_symbol(symbol)  # type: ignore[arg-type]


def test_date_range_is_inclusive_and_ordered() -> None:
    start, stop = check_date_range("2017-03-01", "2017-03-31")
    assert stop == pd.Timestamp("2017-04-01", tz="UTC")
    assert start == pd.Timestamp("2017-03-01", tz="UTC")
    with pytest.raises(DataError, match="before start_date"):
        check_date_range("2017-03-31", "2017-03-01")
    with pytest.raises(DataError, match="end_date='2017-13-45' is not a date"):
        check_date_range("2017-03-01", "2017-13-45")


def test_feature_frame_names_unseen_missing_and_order() -> None:
    frame = pd.DataFrame(columns=["b", "a", "z"])
    with pytest.raises(DataError, match="unseen at training: z; missing: c"):
        check_feature_frame(frame, ["a", "b", "c"], "predict")
    with pytest.raises(DataError, match="different order"):
        check_feature_frame(pd.DataFrame(columns=["b", "a"]), ["a", "b"], "predict")
    check_feature_frame(pd.DataFrame(columns=["a", "b"]), ["a", "b"], "predict")
