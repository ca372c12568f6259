from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrdr.errors import StrategyConfigError
from ktrdr.evaluate.walk_forward import parse_period, plan_folds, summarise

pytestmark = pytest.mark.unit


@settings(max_examples=60, deadline=None)
@given(
    train=st.sampled_from(["3M", "6M", "12W", "90D", "1Y"]),
    test=st.sampled_from(["1M", "2W", "30D"]),
    step=st.sampled_from(["1M", "2W", "30D", "2M"]),
    anchored=st.booleans(),
)
def test_folds_test_after_their_window_inside_the_range(
    train: str, test: str, step: str, anchored: bool
) -> None:
    folds = plan_folds("2015-01-01", "2017-12-31", train, test, step, anchored)
    day = pd.Timedelta(days=1)
    for fold in folds:
        assert fold.train_start < fold.train_end < fold.test_start <= fold.test_end
        assert fold.test_start == fold.train_end + day  # no gap, no overlap
        assert fold.train_start >= pd.Timestamp("2015-01-01", tz="UTC")
        assert fold.test_end <= pd.Timestamp("2017-12-31", tz="UTC")
        if anchored:
            assert fold.train_start == pd.Timestamp("2015-01-01", tz="UTC")
    starts = [f.test_start for f in folds]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert [f.index for f in folds] == list(range(1, len(folds) + 1))


def test_rolling_and_anchored_windows() -> None:
    rolling = plan_folds("2017-01-01", "2017-12-31", "6M", "1M", "1M")
    assert [f.dates()["test_start"] for f in rolling] == [f"2017-{m:02d}-01" for m in range(7, 13)]
    assert rolling[1].dates()["train_start"] == "2017-02-01"
    assert rolling[1].dates()["train_end"] == "2017-07-31"
    anchored = plan_folds("2017-01-01", "2017-12-31", "6M", "1M", "1M", anchored=True)
    assert anchored[2].dates() == {
        "train_start": "2017-01-01",
        "train_end": "2017-08-31",
        "test_start": "2017-09-01",
        "test_end": "2017-09-30",
    }


def test_bad_periods_and_ranges_are_refused() -> None:
    for text in ("6", "M", "0M", "6Q", "-1M", "6 months"):
        with pytest.raises(StrategyConfigError, match="use a count and a unit"):
            parse_period(text, "--train")
    with pytest.raises(StrategyConfigError, match="no walk-forward fold fits"):
        plan_folds("2017-01-01", "2017-03-31", "6M", "1M", "1M")


def test_the_summary() -> None:
    rows = [
        {"accuracy": 0.6, "better_baseline_accuracy": 0.5, "beats_baseline": True, "error": None},
        {"accuracy": 0.4, "better_baseline_accuracy": 0.5, "beats_baseline": False, "error": None},
        {"fold": 3, "error": "DataError: no bars"},
    ]
    summary = summarise(rows)
    assert summary["folds"] == 3 and summary["failed_folds"] == 1
    assert summary["mean_accuracy"] == pytest.approx(0.5)
    assert summary["share_beating_baseline"] == 0.5 and summary["share_above_baseline"] == 0.5
