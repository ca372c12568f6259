from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from ktrdr.data.store import list_store, load_bars, read_store_file, store_path, write_bars
from ktrdr.data.synthetic import generate_bars
from ktrdr.errors import DataError

pytestmark = pytest.mark.unit


@pytest.fixture
def bars() -> pd.DataFrame:
    return generate_bars("SYN", "1h", "2024-01-01", "2024-01-31", seed=4)


def test_round_trip_is_exact(tmp_path: Path, bars: pd.DataFrame) -> None:
    write_bars("SYN", "1h", bars, data_dir=tmp_path)
    loaded = load_bars("SYN", "1h", data_dir=tmp_path)
    pd.testing.assert_frame_equal(
        loaded, bars, check_freq=False, check_index_type=False, check_names=False
    )
    assert (tmp_path / "SYN_1h.csv").read_text().splitlines()[0] == (
        "timestamp,open,high,low,close,volume"
    )


def test_data_dir_comes_from_the_environment_at_call_time(
    tmp_path: Path, bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTRDR_DATA_DIR", str(tmp_path / "env"))
    write_bars("SYN", "1h", bars)
    assert store_path("SYN", "1h") == tmp_path / "env" / "SYN_1h.csv"
    assert len(load_bars("SYN", "1h")) == len(bars)


def test_end_date_is_inclusive(eurusd_1h: pd.DataFrame, tmp_path: Path) -> None:
    write_bars("EURUSD", "1h", eurusd_1h, data_dir=tmp_path)
    march = load_bars("EURUSD", "1h", "2017-03-01", "2017-03-31", data_dir=tmp_path)
    assert march.index[0] == pd.Timestamp("2017-03-01 00:00", tz="UTC")
    assert march.index[-1].date() == pd.Timestamp("2017-03-31").date()
    assert march.index[-1] == pd.Timestamp("2017-03-31 20:00", tz="UTC")


def test_history_bars_before_the_range(eurusd_1h: pd.DataFrame, tmp_path: Path) -> None:
    write_bars("EURUSD", "1h", eurusd_1h, data_dir=tmp_path)
    with_history = load_bars(
        "EURUSD", "1h", "2017-03-01", "2017-03-31", history_bars=50, data_dir=tmp_path
    )
    plain = load_bars("EURUSD", "1h", "2017-03-01", "2017-03-31", data_dir=tmp_path)
    assert len(with_history) == len(plain) + 50
    assert with_history.index[50] == plain.index[0]
    # At the start of the store there is less history than asked for: what exists is used.
    early = load_bars(
        "EURUSD", "1h", "2017-01-02", "2017-01-03", history_bars=500, data_dir=tmp_path
    )
    assert early.index[0] == eurusd_1h.index[0]


def test_partial_coverage_loads_what_exists_and_logs_it(
    eurusd_1h: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_bars("EURUSD", "1h", eurusd_1h, data_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        bars = load_bars("EURUSD", "1h", "2017-12-01", "2018-02-01", data_dir=tmp_path)
    assert bars.index[-1] == eurusd_1h.index[-1]
    assert "covers only part" in caplog.text and "2017-12-29 21:00:00" in caplog.text


def test_range_without_bars_names_what_the_store_holds(
    eurusd_1h: pd.DataFrame, tmp_path: Path
) -> None:
    write_bars("EURUSD", "1h", eurusd_1h, data_dir=tmp_path)
    with pytest.raises(DataError, match=r"no EURUSD 1h bars from 2019-01-01.*holds 2017-01-01"):
        load_bars("EURUSD", "1h", "2019-01-01", "2019-02-01", data_dir=tmp_path)


def test_missing_file_says_how_to_get_data(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="ktrdr data sample"):
        load_bars("NOPE", "1h", data_dir=tmp_path)


def test_conflicting_merge_needs_replace_and_writes_nothing(
    tmp_path: Path, bars: pd.DataFrame
) -> None:
    write_bars("SYN", "1h", bars.iloc[:100], data_dir=tmp_path)
    before = (tmp_path / "SYN_1h.csv").read_bytes()
    changed = bars.iloc[50:150].copy()
    changed.iloc[0, changed.columns.get_loc("volume")] += 1
    with pytest.raises(
        DataError, match=r"1 bar\(s\) already in .* have different values.*--replace"
    ):
        write_bars("SYN", "1h", changed, data_dir=tmp_path)
    assert (tmp_path / "SYN_1h.csv").read_bytes() == before
    report = write_bars("SYN", "1h", changed, data_dir=tmp_path, replace=True)
    assert (report.added, report.replaced, report.unchanged, report.total) == (50, 1, 49, 150)
    assert list(tmp_path.iterdir()) == [tmp_path / "SYN_1h.csv"]


def test_list_store_and_unreadable_files(tmp_path: Path, bars: pd.DataFrame) -> None:
    write_bars("SYN", "1h", bars, data_dir=tmp_path)
    (tmp_path / "notes.csv").write_text("not a store file")
    [entry] = list_store(tmp_path)
    assert (entry.symbol, entry.timeframe, entry.bars) == ("SYN", "1h", len(bars))
    (tmp_path / "BAD_1h.csv").write_text("")
    with pytest.raises(DataError, match=r"BAD_1h\.csv"):
        list_store(tmp_path)
    with pytest.raises(DataError, match=r"BAD_1h\.csv"):
        read_store_file(tmp_path / "BAD_1h.csv")


def test_sub_second_open_times_round_trip(tmp_path: Path) -> None:
    bars = generate_bars("SYN", "1m", "2024-01-02", "2024-01-02", seed=1).iloc[:50]
    bars.index = bars.index + pd.Timedelta(milliseconds=500)
    write_bars("SYN", "1m", bars, data_dir=tmp_path)
    assert "T00:00:00.500000+00:00" in (tmp_path / "SYN_1m.csv").read_text()
    loaded = load_bars("SYN", "1m", data_dir=tmp_path)
    assert (loaded.index == bars.index).all()
