from __future__ import annotations

import pandas as pd
import pytest

from ktrdr.data.synthetic import generate_bars
from ktrdr.data.timeframes import (
    base_timeframe,
    parse_timeframe,
    resample_bars,
    resample_with_report,
    sort_timeframes,
)
from ktrdr.errors import DataError

pytestmark = pytest.mark.unit


def test_parse_known_timeframes() -> None:
    assert parse_timeframe("4h") == pd.Timedelta(hours=4)
    assert parse_timeframe("1w") == pd.Timedelta(weeks=1)


@pytest.mark.parametrize("bad", ["3h", "", "1H", "hour"])
def test_unknown_timeframe_lists_valid_ones(bad: str) -> None:
    with pytest.raises(DataError, match=r"unknown timeframe.*1m, 5m"):
        parse_timeframe(bad)


def test_base_timeframe_is_the_lowest_whatever_the_order() -> None:
    assert base_timeframe(["1d", "1h", "4h"]) == "1h"
    assert sort_timeframes(["1d", "1h", "4h", "1h"]) == ["1h", "4h", "1d"]
    with pytest.raises(DataError, match="no timeframe given"):
        base_timeframe([])


def test_resampled_bar_aggregates_the_bars_opening_inside_it(eurusd_1h: pd.DataFrame) -> None:
    four_hour = resample_bars(eurusd_1h, "1h", "4h")
    stamp = pd.Timestamp("2017-03-01 08:00", tz="UTC")
    inside = eurusd_1h.loc[stamp : stamp + pd.Timedelta(hours=3)]
    assert len(inside) == 4
    bar = four_hour.loc[stamp]
    assert bar["open"] == inside["open"].iloc[0]
    assert bar["high"] == inside["high"].max()
    assert bar["low"] == inside["low"].min()
    assert bar["close"] == inside["close"].iloc[-1]
    assert bar["volume"] == pytest.approx(inside["volume"].sum())


def test_resampling_is_stamped_by_open_time_and_skips_empty_bins() -> None:
    bars = generate_bars("SYN", "1h", "2024-01-05", "2024-01-08", seed=1)
    daily = resample_bars(bars, "1h", "1d")
    assert all(stamp.hour == 0 for stamp in daily.index)
    # Saturday has no bars at all: no daily bar for it, never a filled one.
    assert pd.Timestamp("2024-01-06", tz="UTC") not in daily.index
    assert not daily.isna().any().any()


def test_weekly_bars_open_on_monday() -> None:
    bars = generate_bars("SYN", "1d", "2024-01-01", "2024-03-01", seed=1)
    weekly = resample_bars(bars, "1d", "1w")
    assert set(weekly.index.day_of_week) == {0}


def test_resampling_to_a_shorter_timeframe_is_an_error(eurusd_1h: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="must be longer"):
        resample_bars(eurusd_1h, "1h", "30m")


def test_sunday_stubs_and_a_partial_last_day_are_left_out(eurusd_1h: pd.DataFrame) -> None:
    # The sample's FX week opens on Sunday evening UTC: a midnight-UTC daily bin holds 1-3 hourly
    # bars there, which would be stored as a "daily" bar with a fraction of a day's range.
    daily, dropped = resample_with_report(eurusd_1h, "1h", "1d")
    counts = eurusd_1h["close"].resample("1D").count()
    stubs = counts[(counts > 0) & (counts < 6)]
    assert len(stubs) > 40 and not daily.index.isin(stubs.index).any()
    assert dropped["stub"] == len(stubs)
    assert (daily.index.day_of_week != 6).all()
    # Cutting the hourly bars at midday leaves that day unfinished: it is not stored.
    cut = eurusd_1h.loc[:"2017-06-14 12:00"]
    partial, dropped = resample_with_report(cut, "1h", "1d")
    assert partial.index[-1] == pd.Timestamp("2017-06-13", tz="UTC")
    assert dropped["partial last"] == 1
    assert resample_bars(eurusd_1h.loc[:"2017-06-14 23:00"], "1h", "1d").index[-1] == pd.Timestamp(
        "2017-06-14", tz="UTC"
    )


def test_a_sunday_stub_is_left_out_of_a_few_days_of_bars_too(eurusd_1h: pd.DataFrame) -> None:
    # A short import: Sunday evening to Monday midday. Against the median of its own two bins
    # (2 and 13 bars) the Sunday looked full, and was stored as a daily bar of two hours.
    short = eurusd_1h.loc["2017-06-11":"2017-06-12 12:00"]
    assert short.index[0] == pd.Timestamp("2017-06-11 21:00", tz="UTC")
    daily, dropped = resample_with_report(short, "1h", "1d")
    assert daily.empty and dropped == {"stub": 1, "partial last": 1}
    # And the week after it: the Sunday goes, the four whole weekdays stay.
    week = eurusd_1h.loc["2017-06-11":"2017-06-15 23:00"]
    daily = resample_bars(week, "1h", "1d")
    assert list(daily.index.day_of_week) == [0, 1, 2, 3]
    # A session that opens late and ends inside its bin (stock hours) is a whole day, however
    # few its bars; and a 4h bin of the Sunday open keeps its bars (3 of 4 is not a stub).
    stock = eurusd_1h.loc["2017-06-12":"2017-06-16"]
    stock = stock[(stock.index.hour >= 14) & (stock.index.hour < 16)]
    assert len(resample_bars(stock, "1h", "1d")) == 4  # the fifth is the unfinished last
    four = resample_bars(week, "1h", "4h")
    assert four.index[0] == pd.Timestamp("2017-06-11 20:00", tz="UTC")
