from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.errors import DataError
from ktrdr.training.data_loading import load_training_data

pytestmark = pytest.mark.unit


def test_loads_each_timeframe_natively_with_history(sample_data_dir: Path) -> None:
    data = load_training_data(
        ["EURUSD"],
        ["1h", "4h"],
        "2017-03-01",
        "2017-03-31",
        data_dir=sample_data_dir,
        history_bars={"1h": 100, "4h": 10},
    )
    assert list(data["EURUSD"]) == ["1h", "4h"]
    hourly, four_hour = data["EURUSD"]["1h"], data["EURUSD"]["4h"]
    assert (hourly.index < "2017-03-01").sum() == 100
    assert (four_hour.index < "2017-03-01").sum() == 10
    assert hourly.index[-1].strftime("%Y-%m-%d") == "2017-03-31"


def test_data_dir_from_environment(sample_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_DATA_DIR", str(sample_data_dir))
    data = load_training_data(["EURUSD", "GOOGL"], ["1d"], "2017-01-01", "2017-12-31")
    assert set(data) == {"EURUSD", "GOOGL"}


@pytest.mark.parametrize(
    ("symbols", "timeframes", "start", "end", "mode", "message"),
    [
        (["USDJPY"], ["1h"], "2017-01-01", "2017-02-01", "local", "USDJPY_1h.csv does not exist"),
        (["EURUSD"], ["1w"], "2017-01-01", "2017-02-01", "local", "EURUSD_1w.csv does not exist"),
        (["EURUSD"], ["1h"], "2020-01-01", "2020-02-01", "local", "no EURUSD 1h bars from 2020"),
        (["EURUSD"], ["1h"], "2017-01-01", "2017-02-01", "remote", "data_mode='remote'"),
        # The store's own path safety, whatever the caller checked before.
        (["../x"], ["1h"], "2017-01-01", "2017-02-01", "local", "invalid symbol"),
    ],
)
def test_errors_name_what_is_missing(
    sample_data_dir: Path,
    symbols: list[str],
    timeframes: list[str],
    start: str,
    end: str,
    mode: str,
    message: str,
) -> None:
    with pytest.raises(DataError, match=message):
        load_training_data(
            symbols, timeframes, start, end, data_mode=mode, data_dir=sample_data_dir
        )
