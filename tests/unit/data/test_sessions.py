from __future__ import annotations

import pandas as pd
import pytest

from ktrdr.data.sessions import week_open_note, week_opens
from ktrdr.data.synthetic import generate_bars

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("timeframe", ["15m", "1h", "4h"])
@pytest.mark.parametrize("session_tz", [None, "America/New_York"])
def test_bars_at_their_real_times_get_no_note(timeframe: str, session_tz: str | None) -> None:
    bars = generate_bars("EURUSD", timeframe, "2024-01-01", "2024-12-31", session_tz=session_tz)
    assert week_open_note(pd.DatetimeIndex(bars.index), timeframe, "UTC") is None


def _read_as(index: pd.DatetimeIndex, wall_zone: str, read_in: str) -> pd.DatetimeIndex:
    """``index`` written as naive wall times of ``wall_zone`` and read back in ``read_in``."""
    naive = index.tz_convert(wall_zone).tz_localize(None)
    read = naive.tz_localize(read_in, ambiguous="NaT", nonexistent="NaT")
    return read[~read.isna()].tz_convert("UTC")


def test_new_york_wall_times_read_as_utc_are_named_with_the_zone_to_use() -> None:
    bars = generate_bars("EURUSD", "1h", "2024-01-01", "2024-12-31", session_tz="America/New_York")
    wrong = _read_as(pd.DatetimeIndex(bars.index), "America/New_York", "UTC")
    note = week_open_note(wrong, "1h", "UTC")
    assert note is not None
    assert note.startswith("the trading weeks open on Sunday at 17:00 UTC (52 of 52 weeks)")
    assert note.endswith("import it again with --tz America/New_York --replace")


def test_utc_times_read_as_new_york_open_their_weeks_on_monday_and_get_the_generic_advice() -> None:
    bars = generate_bars("EURUSD", "1h", "2024-01-01", "2024-12-31")
    wrong = _read_as(pd.DatetimeIndex(bars.index), "UTC", "America/New_York")
    note = week_open_note(wrong, "1h", "America/New_York")
    assert note is not None and "open on Monday at 02:00 UTC" in note
    assert "if the file's times are not in America/New_York" in note


def test_stock_hours_daily_bars_and_a_single_week_are_left_alone() -> None:
    hourly = generate_bars("EURUSD", "1h", "2024-01-01", "2024-03-31")
    stock_hours = hourly[(hourly.index.hour >= 14) & (hourly.index.hour < 21)]
    assert week_open_note(pd.DatetimeIndex(stock_hours.index), "1h", "UTC") is None
    daily = generate_bars("EURUSD", "1d", "2024-01-01", "2024-12-31")
    assert week_open_note(pd.DatetimeIndex(daily.index), "1d", "UTC") is None
    one_week = _read_as(pd.DatetimeIndex(hourly.index[:130]), "America/New_York", "UTC")
    assert len(week_opens(one_week)) < 2
    assert week_open_note(one_week, "1h", "UTC") is None


def test_new_york_4h_bars_move_by_an_hour_in_utc_at_each_dst_change() -> None:
    bars = generate_bars("EURUSD", "4h", "2024-01-01", "2024-12-31", session_tz="America/New_York")
    index = pd.DatetimeIndex(bars.index)
    local = index.tz_convert("America/New_York")
    assert ((local.hour - 17) % 4 == 0).all() and (local.minute == 0).all()
    opens = week_opens(index).tz_convert("America/New_York")
    assert (opens.day_of_week == 6).all() and (opens.hour == 17).all()
    assert set(index[index.month == 1].hour) == {2, 6, 10, 14, 18, 22}
    assert set(index[index.month == 7].hour) == {1, 5, 9, 13, 17, 21}


def test_sunday_stubs_are_found_only_in_daily_bars_of_a_market_closed_on_saturdays() -> None:
    from ktrdr.data.sessions import weekend_stubs
    from ktrdr.data.timeframes import resample_bars

    hourly = generate_bars("EURUSD", "1h", "2024-01-01", "2024-02-29")
    broker = hourly.resample("1D")["close"].count()
    broker_days = pd.DatetimeIndex(broker.index[broker > 0])
    stubs = weekend_stubs(broker_days, "1d")
    assert len(stubs) == 8 and (stubs.day_of_week == 6).all()
    # ktrdr's own daily bars of the same hours, the hourly bars, and a market that trades on
    # Saturdays too (crypto: its Sunday is a whole day) have none.
    own = pd.DatetimeIndex(resample_bars(hourly, "1h", "1d").index)
    assert len(weekend_stubs(own, "1d")) == 0
    assert len(weekend_stubs(pd.DatetimeIndex(hourly.index), "1h")) == 0
    every_day = pd.date_range("2024-01-01", "2024-02-29", freq="1D", tz="UTC")
    assert len(weekend_stubs(every_day, "1d")) == 0
