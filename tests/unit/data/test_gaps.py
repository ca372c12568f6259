from __future__ import annotations

import pandas as pd
import pytest

from ktrdr.data.gaps import find_gaps, gap_limit, parse_max_gap, segment_bounds, segment_ids
from ktrdr.data.synthetic import generate_bars
from ktrdr.errors import DataError

pytestmark = pytest.mark.unit


def test_weekends_and_holidays_are_not_gaps(eurusd_1h: pd.DataFrame) -> None:
    # The real 2017 sample has 52 weekends and Christmas/New Year closures, and no gap.
    assert find_gaps(eurusd_1h.index, "1h") == []
    daily = generate_bars("SYN", "1d", "2017-01-01", "2017-12-31", seed=1)
    assert find_gaps(daily.index, "1d") == []


def test_a_five_month_hole_is_one_gap() -> None:
    bars = generate_bars("SYN", "1h", "2017-01-01", "2017-12-31", seed=1)
    holed = bars[(bars.index < "2017-03-01") | (bars.index >= "2017-08-01")]
    [gap] = find_gaps(holed.index, "1h")
    assert gap.last_before < pd.Timestamp("2017-03-01", tz="UTC") <= gap.first_after
    assert gap.missing > pd.Timedelta(days=150)
    ids = segment_ids(holed.index, "1h")
    assert set(ids) == {0, 1}
    assert segment_bounds(holed.index, "1h") == [
        (0, int((ids == 0).sum())),
        (int((ids == 0).sum()), len(holed)),
    ]


def test_limit_defaults_and_overrides() -> None:
    assert gap_limit("1h") == pd.Timedelta(days=4)
    assert gap_limit("1d") == pd.Timedelta(days=10)
    assert gap_limit("1h", "36h") == pd.Timedelta(hours=36)
    bars = generate_bars("SYN", "1h", "2017-01-01", "2017-01-31", seed=1)
    # With a 36-hour limit every weekend is a gap.
    assert len(find_gaps(bars.index, "1h", "36h")) == 4
    for bad in ("soon", "-1d", "0s"):
        with pytest.raises(DataError, match="not a positive duration"):
            parse_max_gap(bad)
