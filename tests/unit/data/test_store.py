from __future__ import annotations

import logging
import multiprocessing
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ktrdr.data.importer import import_csv
from ktrdr.data.store import (
    delete_bars,
    list_store,
    load_bars,
    read_store_file,
    store_path,
    write_bars,
)
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
    # No temporary file is left behind; the lock file stays, out of listings.
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [".locks/SYN_1h.csv.lock", "SYN_1h.csv"]


def test_list_store_and_unreadable_files(tmp_path: Path, bars: pd.DataFrame) -> None:
    write_bars("SYN", "1h", bars, data_dir=tmp_path)
    (tmp_path / "notes.csv").write_text("not a store file")
    [entry] = list_store(tmp_path)
    assert (entry.symbol, entry.timeframe, entry.bars) == ("SYN", "1h", len(bars))
    (tmp_path / "BAD_1h.csv").write_text("")
    # One broken file is listed with its error; it does not hide the others.
    bad, good = list_store(tmp_path)
    assert bad.symbol == "BAD" and bad.error is not None and "BAD_1h.csv" in bad.error
    assert good.symbol == "SYN" and good.error is None and good.bars == len(bars)
    with pytest.raises(DataError, match=r"BAD_1h\.csv"):
        read_store_file(tmp_path / "BAD_1h.csv")


@pytest.mark.parametrize("cell", ["abc", "inf", "-inf", "1e400", "nan", ""])
def test_a_corrupt_cell_names_the_file_and_line(
    tmp_path: Path, bars: pd.DataFrame, cell: str
) -> None:
    write_bars("SYN", "1h", bars.iloc[:20], data_dir=tmp_path)
    path = tmp_path / "SYN_1h.csv"
    lines = path.read_text().splitlines()
    fields = lines[7].split(",")
    fields[4] = cell  # the close of the bar on line 8
    lines[7] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"SYN_1h\.csv, line 8: close is .*not a finite number"):
        read_store_file(path, "1h")
    [entry] = list_store(tmp_path)
    assert entry.error is not None and "line 8" in entry.error


def test_infinite_bars_never_enter_the_store(tmp_path: Path, bars: pd.DataFrame) -> None:
    broken = bars.iloc[:20].copy()
    broken.iloc[5, broken.columns.get_loc("high")] = np.inf
    with pytest.raises(DataError, match="missing or infinite values"):
        write_bars("SYN", "1h", broken, data_dir=tmp_path)
    assert not (tmp_path / "SYN_1h.csv").exists()


def test_the_merged_file_is_checked_for_spacing(tmp_path: Path, bars: pd.DataFrame) -> None:
    # Two 2-row writes whose stamps are days apart are each too short to judge; together they
    # would make a "1h" file with daily spacing, which the store refuses.
    daily = bars.iloc[[0, 24, 48, 72]]
    write_bars("SYN", "1h", daily.iloc[:2], data_dir=tmp_path)
    before = (tmp_path / "SYN_1h.csv").read_bytes()
    with pytest.raises(DataError, match="merged with the new bars: median bar spacing is 1 days"):
        write_bars("SYN", "1h", daily.iloc[2:], data_dir=tmp_path)
    assert (tmp_path / "SYN_1h.csv").read_bytes() == before
    assert list_store(tmp_path)[0].error is None


def test_resampled_and_broker_4h_bars_in_one_file_are_named_as_two_alignments(
    tmp_path: Path,
) -> None:
    # ktrdr's 4h bars of January open at 00:00, 04:00 ... UTC; a New York broker's 4h bars of
    # from mid-January open at 17:00 local: 22:00, 02:00 ... UTC. Where they overlap they
    # interleave two hours apart: the store said "check the timeframe you declared" (wrong:
    # the timeframe is right), or, when the overlap was short, took them in silence.
    from ktrdr.data.timeframes import resample_bars

    hourly = generate_bars("FX", "1h", "2024-01-01", "2024-01-31", seed=2)
    write_bars("FX", "4h", resample_bars(hourly, "1h", "4h"), data_dir=tmp_path)
    before = (tmp_path / "FX_4h.csv").read_bytes()
    broker = generate_bars(
        "FX", "4h", "2024-01-15", "2024-02-29", seed=3, session_tz="America/New_York"
    )
    with pytest.raises(DataError) as error:
        write_bars("FX", "4h", broker, data_dir=tmp_path)
    message = str(error.value)
    assert "the stored 4h bars open 0:00 past each UTC 4h boundary and the new ones 2:00" in message
    assert "timeframe you declared" not in message and "ktrdr data delete" in message
    assert (tmp_path / "FX_4h.csv").read_bytes() == before
    # With --replace the broker's bars take their range whole: nothing interleaves.
    write_bars("FX", "4h", broker, data_dir=tmp_path, replace=True)
    stored = load_bars("FX", "4h", data_dir=tmp_path)
    later = stored[stored.index >= broker.index[0]]
    assert later.index.equals(broker.index)
    assert (stored[stored.index < broker.index[0]].index.hour % 4 == 0).all()
    # Bars that share an alignment are never called a clash, however they fail.
    assert "the same timeframe" not in str(_spacing_error(tmp_path))


def _spacing_error(folder: Path) -> DataError:
    bars = generate_bars("SYN", "1h", "2024-01-01", "2024-01-10", seed=1)
    daily = bars.iloc[[0, 24, 48, 72]]
    write_bars("SYN", "1h", daily.iloc[:2], data_dir=folder)
    with pytest.raises(DataError) as error:
        write_bars("SYN", "1h", daily.iloc[2:], data_dir=folder)
    return error.value


def test_dry_run_reports_conflicts_and_writes_nothing(tmp_path: Path, bars: pd.DataFrame) -> None:
    write_bars("SYN", "1h", bars.iloc[:100], data_dir=tmp_path)
    before = (tmp_path / "SYN_1h.csv").read_bytes()
    changed = bars.iloc[50:150].copy()
    changed.iloc[:3, changed.columns.get_loc("close")] *= 1.0001
    changed["high"] = changed[["high", "close"]].max(axis=1)
    with pytest.raises(DataError, match=r"3 bar\(s\) already in .* have different values"):
        write_bars("SYN", "1h", changed, data_dir=tmp_path, dry_run=True)
    report = write_bars("SYN", "1h", changed, data_dir=tmp_path, replace=True, dry_run=True)
    assert (report.added, report.replaced, report.total, report.written) == (50, 3, 150, False)
    assert len(report.conflicts) == 3
    assert (tmp_path / "SYN_1h.csv").read_bytes() == before


def test_store_files_get_the_umask_mode(tmp_path: Path, bars: pd.DataFrame) -> None:
    old = os.umask(0o022)
    try:
        write_bars("SYN", "1h", bars.iloc[:10], data_dir=tmp_path)
        assert stat.S_IMODE((tmp_path / "SYN_1h.csv").stat().st_mode) == 0o644
        os.chmod(tmp_path / "SYN_1h.csv", 0o640)
        write_bars("SYN", "1h", bars.iloc[10:20], data_dir=tmp_path)
        # A rewrite keeps the mode the user gave the file.
        assert stat.S_IMODE((tmp_path / "SYN_1h.csv").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def _import_chunks(data_dir: str, worker: int, workers: int) -> None:
    # What four concurrent 'ktrdr data import' runs of disjoint ranges do, chunk after chunk.
    bars = generate_bars("SYN", "1h", "2024-01-01", "2024-03-31", seed=4)
    chunks = np.array_split(np.arange(len(bars)), 8 * workers)
    for n, chunk in enumerate(chunks[worker::workers]):
        source = Path(data_dir).parent / f"chunk-{worker}-{n}.csv"
        bars.iloc[chunk].to_csv(source, index_label="timestamp")
        import_csv(source, "SYN", "1h", data_dir=data_dir)


def test_concurrent_writers_keep_every_bar(tmp_path: Path) -> None:
    workers = 4
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [
            pool.submit(_import_chunks, str(tmp_path / "store"), worker, workers)
            for worker in range(workers)
        ]
        for future in futures:
            future.result()
    expected = generate_bars("SYN", "1h", "2024-01-01", "2024-03-31", seed=4)
    stored = load_bars("SYN", "1h", data_dir=tmp_path / "store")
    assert len(stored) == len(expected)
    assert (stored.index == expected.index).all()


def test_sub_second_open_times_round_trip(tmp_path: Path) -> None:
    bars = generate_bars("SYN", "1m", "2024-01-02", "2024-01-02", seed=1).iloc[:50]
    bars.index = bars.index + pd.Timedelta(milliseconds=500)
    write_bars("SYN", "1m", bars, data_dir=tmp_path)
    assert "T00:00:00.500000+00:00" in (tmp_path / "SYN_1m.csv").read_text()
    loaded = load_bars("SYN", "1m", data_dir=tmp_path)
    assert (loaded.index == bars.index).all()


def test_bar_times_finer_than_the_store_keeps_are_refused_unwritten(tmp_path: Path) -> None:
    bars = generate_bars("SYN", "1m", "2024-01-02", "2024-01-02", seed=1).iloc[:50]
    bars.index = bars.index + pd.Timedelta(nanoseconds=250)
    with pytest.raises(DataError, match=r"50 bar time\(s\) finer than a microsecond.*floor"):
        write_bars("SYN", "1m", bars, data_dir=tmp_path)
    assert not (tmp_path / "SYN_1m.csv").exists()


def test_history_never_reaches_across_a_gap(
    tmp_path: Path, bars: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    # A store holding 2017 and 2024 bars: a 2024 run must not warm up on December 2017.
    old = generate_bars("SYN", "1h", "2017-12-01", "2017-12-31", seed=4)
    write_bars("SYN", "1h", pd.concat([old, bars]), data_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        loaded = load_bars(
            "SYN", "1h", "2024-01-01", "2024-01-31", history_bars=100, data_dir=tmp_path
        )
    assert loaded.index[0] == bars.index[0]
    assert "lie across a gap" in caplog.text


def test_gaps_inside_the_range_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    year = generate_bars("SYN", "1h", "2024-01-01", "2024-12-31", seed=4)
    holed = year[(year.index < "2024-03-01") | (year.index >= "2024-08-01")]
    write_bars("SYN", "1h", holed, data_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        load_bars("SYN", "1h", "2024-01-01", "2024-12-31", data_dir=tmp_path)
    assert "1 gap(s) inside 2024-01-01..2024-12-31" in caplog.text
    [entry] = list_store(tmp_path)
    assert len(entry.gaps) == 1 and entry.gaps[0].first_after >= pd.Timestamp(
        "2024-08-01", tz="UTC"
    )


def test_a_range_is_read_without_parsing_the_whole_store(tmp_path: Path) -> None:
    years = generate_bars("SYN", "1h", "2015-01-01", "2019-12-31", seed=4)
    write_bars("SYN", "1h", years, data_dir=tmp_path)
    loaded = load_bars("SYN", "1h", "2019-03-01", "2019-03-31", history_bars=250, data_dir=tmp_path)
    first = years.index.searchsorted(pd.Timestamp("2019-03-01", tz="UTC"))
    stop = years.index.searchsorted(pd.Timestamp("2019-04-01", tz="UTC"))
    pd.testing.assert_frame_equal(
        loaded,
        years.iloc[first - 250 : stop],
        check_freq=False,
        check_names=False,
        check_index_type=False,
    )
    # A damaged cell far outside the range does not stop it; one inside is reported at its
    # real line in the file.
    path = tmp_path / "SYN_1h.csv"
    lines = path.read_text().splitlines()
    inside = first + 10 + 1  # list index of that bar's line (line 1 is the header)
    for position in (5, inside):
        fields = lines[position].split(",")
        fields[4] = "oops"
        lines[position] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    loaded_again = load_bars("SYN", "1h", "2019-06-01", "2019-06-30", data_dir=tmp_path)
    assert len(loaded_again) > 400
    with pytest.raises(DataError, match=rf"SYN_1h\.csv, line {inside + 1}: close is 'oops'"):
        load_bars("SYN", "1h", "2019-03-01", "2019-03-31", data_dir=tmp_path)


def test_delete_removes_the_bars_of_the_days_given_and_keeps_the_rest(
    tmp_path: Path, bars: pd.DataFrame
) -> None:
    write_bars("SYN", "1h", bars, data_dir=tmp_path)
    preview = delete_bars("SYN", "1h", "2024-01-10", "2024-01-12", data_dir=tmp_path, dry_run=True)
    pd.testing.assert_frame_equal(
        load_bars("SYN", "1h", data_dir=tmp_path),
        bars,
        check_freq=False,
        check_index_type=False,
        check_names=False,
    )
    report = delete_bars("SYN", "1h", "2024-01-10", "2024-01-12", data_dir=tmp_path)
    doomed = (bars.index >= "2024-01-10") & (bars.index < "2024-01-13")
    assert report.deleted == preview.deleted == int(doomed.sum()) == 24 + 24 + 22
    assert report.first == pd.Timestamp("2024-01-10", tz="UTC")
    assert report.last == pd.Timestamp("2024-01-12 21:00", tz="UTC")  # Friday
    stored = load_bars("SYN", "1h", data_dir=tmp_path)
    assert report.remaining == len(stored) == len(bars) - 70
    assert stored.index.equals(bars.index[~doomed])


def test_delete_of_everything_removes_the_file_and_a_range_without_bars_changes_nothing(
    tmp_path: Path, bars: pd.DataFrame
) -> None:
    write_bars("SYN", "1h", bars, data_dir=tmp_path)
    before = (tmp_path / "SYN_1h.csv").read_bytes()
    with pytest.raises(
        DataError,
        match=r"no SYN 1h bars from 2025-01-01 to 2025-01-31 .* "
        r"2024-01-01 00:00:00\+00:00 to .*nothing was deleted",
    ):
        delete_bars("SYN", "1h", "2025-01-01", "2025-01-31", data_dir=tmp_path)
    assert (tmp_path / "SYN_1h.csv").read_bytes() == before
    report = delete_bars("SYN", "1h", data_dir=tmp_path)
    assert report.deleted == len(bars) and report.remaining == 0
    assert not (tmp_path / "SYN_1h.csv").exists()
    with pytest.raises(DataError, match="does not exist"):
        delete_bars("SYN", "1h", data_dir=tmp_path)
    with pytest.raises(DataError, match="invalid symbol"):
        delete_bars("../SYN", "1h", data_dir=tmp_path)


def test_a_delete_beside_concurrent_imports_loses_none_of_their_bars(tmp_path: Path) -> None:
    """The delete reads, filters and rewrites the file under the store lock: an import that
    lands meanwhile is never overwritten by the delete's older copy."""
    store = tmp_path / "store"
    imported = generate_bars("SYN", "1h", "2024-01-01", "2024-03-31", seed=4)
    write_bars("SYN", "1h", imported[imported.index < "2024-02-01"], data_dir=store)
    workers = 2
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [
            pool.submit(_import_chunks, str(store), worker, workers) for worker in range(workers)
        ]
        deleted = 0
        weekdays = pd.bdate_range("2024-01-02", "2024-01-30")[::2]
        for day in weekdays.strftime("%Y-%m-%d"):  # one delete a day, amid the imports
            deleted += delete_bars("SYN", "1h", day, day, data_dir=store).deleted
        for future in futures:
            future.result()
    stored = load_bars("SYN", "1h", data_dir=store)
    assert deleted > 0
    assert stored.index.difference(imported.index).empty
    # Every imported bar is there unless a delete of its day ran after it landed; the days
    # after January were never deleted, so all of them are there.
    after = imported.index[imported.index >= "2024-02-01"]
    assert after.isin(stored.index).all()
    assert len(stored) >= len(imported) - deleted


def test_a_file_of_repeated_prices_is_merged_without_pairing_every_bar_with_every_other(
    tmp_path: Path,
) -> None:
    """Shift detection matches bars by price; 30,000 bars of one price would make 9e8 pairs
    (about 40 GB) if repeated prices were matched. They are not, and no shift is claimed."""
    times = pd.date_range("2024-01-01", periods=30_000, freq="1min", tz="UTC", name="timestamp")
    flat = pd.DataFrame(
        {"open": 1.1, "high": 1.1, "low": 1.1, "close": 1.1, "volume": 0.0}, index=times
    )
    write_bars("FLAT", "1m", flat, data_dir=tmp_path)
    moved = flat.copy()
    moved.index = times + pd.Timedelta(hours=5)
    report = write_bars("FLAT", "1m", moved, data_dir=tmp_path)
    assert report.offsets == () and report.added == 300 and report.total == 30_300
