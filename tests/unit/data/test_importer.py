from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ktrdr.data.importer import import_csv
from ktrdr.data.store import load_bars
from ktrdr.data.synthetic import generate_bars
from ktrdr.errors import DataError
from tests.conftest import raised_within

pytestmark = pytest.mark.unit


@pytest.fixture
def bars() -> pd.DataFrame:
    return generate_bars("SRC", "1h", "2024-03-04", "2024-03-08", seed=8).round(5)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _rows(bars: pd.DataFrame, stamp: str, sep: str = ",") -> str:
    lines = []
    for t, b in bars.iterrows():
        values = sep.join(f"{b[c]:.5f}" for c in ("open", "high", "low", "close"))
        lines.append(f"{t.strftime(stamp)}{sep}{values}{sep}{int(b['volume'])}")
    return "\n".join(lines) + "\n"


def _assert_imported(tmp_path: Path, bars: pd.DataFrame) -> None:
    stored = load_bars("X", "1h", data_dir=tmp_path / "store")
    np.testing.assert_allclose(stored.to_numpy(), bars.to_numpy(), rtol=0, atol=1e-9)
    assert (stored.index == bars.index).all()


@pytest.mark.parametrize(
    ("header", "stamp", "sep"),
    [
        ("timestamp,open,high,low,close,volume", "%Y-%m-%dT%H:%M:%SZ", ","),
        ("Gmt time,Open,High,Low,Close,Volume", "%d.%m.%Y %H:%M:%S.000", ","),
        ("<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>", "%Y.%m.%d\t%H:%M", "\t"),
        ("Date;Time;Open;High;Low;Close;Volume", "%d.%m.%Y;%H:%M:%S", ";"),
        ("", "%Y.%m.%d,%H:%M", ","),  # headerless MetaTrader export
        ("", "%Y%m%d %H%M%S", ";"),  # headerless HistData export
        (",open,high,low,close,volume", "%Y-%m-%d %H:%M:%S+00:00", ","),  # pandas index
    ],
)
def test_common_csv_shapes(
    tmp_path: Path, bars: pd.DataFrame, header: str, stamp: str, sep: str
) -> None:
    body = _rows(bars, stamp, sep)
    source = _write(tmp_path / "in.csv", (header + "\n" if header else "") + body)
    report = import_csv(source, "X", "1h", data_dir=tmp_path / "store")
    assert report.bars == len(bars)
    _assert_imported(tmp_path, bars)


def test_extra_columns_are_dropped_and_named(tmp_path: Path, bars: pd.DataFrame) -> None:
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume,Spread"]
    for t, b in bars.iterrows():
        lines.append(
            f"{t.isoformat()},{b.open},{b.high},{b.low},{b.close},{b.close * 0.9},{b.volume},3"
        )
    report = import_csv(
        _write(tmp_path / "in.csv", "\n".join(lines)), "X", "1h", data_dir=tmp_path / "store"
    )
    assert report.dropped_columns == ("Adj Close", "Spread")
    _assert_imported(tmp_path, bars)


def test_naive_times_in_a_time_zone_and_close_stamps(tmp_path: Path, bars: pd.DataFrame) -> None:
    local = bars.index.tz_convert("America/New_York").tz_localize(None) + pd.Timedelta(hours=1)
    text = "time,open,high,low,close,volume\n" + _rows(bars.set_axis(local), "%Y-%m-%d %H:%M:%S")
    import_csv(
        _write(tmp_path / "in.csv", text),
        "X",
        "1h",
        data_dir=tmp_path / "store",
        tz="America/New_York",
        timestamps="close",
    )
    _assert_imported(tmp_path, bars)


def test_unknown_time_zone_and_nonexistent_local_times(tmp_path: Path, bars: pd.DataFrame) -> None:
    text = "time,open,high,low,close,volume\n" + _rows(bars, "%Y-%m-%d %H:%M:%S")
    source = _write(tmp_path / "in.csv", text)
    with pytest.raises(DataError, match="time zone 'Mars/Olympus'"):
        import_csv(source, "X", "1h", data_dir=tmp_path / "store", tz="Mars/Olympus")
    # 02:30 on 2024-03-10 never happened in New York (clocks jumped from 02:00 to 03:00).
    gap = (
        "time,open,high,low,close,volume\n2024-03-10 01:00:00,1,2,0.5,1.5,1\n"
        "2024-03-10 02:30:00,1,2,0.5,1.5,1\n"
    )
    with pytest.raises(DataError, match="America/New_York"):
        import_csv(
            _write(tmp_path / "gap.csv", gap),
            "X",
            "1h",
            data_dir=tmp_path / "store",
            tz="America/New_York",
        )
    assert not (tmp_path / "store").exists()


def test_exact_duplicates_and_unsorted_rows_are_fixed(tmp_path: Path, bars: pd.DataFrame) -> None:
    shuffled = pd.concat([bars.iloc[10:], bars.iloc[:10], bars.iloc[[3, 4]]])
    text = "timestamp,open,high,low,close,volume\n" + _rows(shuffled, "%Y-%m-%dT%H:%M:%S")
    report = import_csv(_write(tmp_path / "in.csv", text), "X", "1h", data_dir=tmp_path / "store")
    assert report.duplicates_dropped == 2
    _assert_imported(tmp_path, bars)


def test_zero_volume_2024_hourly_bars_import_exactly(tmp_path: Path, bars: pd.DataFrame) -> None:
    zero = bars.assign(volume=0.0)
    text = "timestamp,open,high,low,close,volume\n" + _rows(zero, "%Y-%m-%dT%H:%M:%S+00:00")
    import_csv(_write(tmp_path / "in.csv", text), "X", "1h", data_dir=tmp_path / "store")
    _assert_imported(tmp_path, zero)


HEADER = "timestamp,open,high,low,close,volume\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        (HEADER, "a header but no rows"),
        ("open,high,low,close\n1,2,0.5,1.5\n", "no timestamp column"),
        (HEADER + "yesterday,1,2,0.5,1.5,10\n", "unparseable timestamp.*'yesterday' at line 2"),
        (
            HEADER + "2024-01-01T00:00,1,2,0.5,1.5,10\n2024-01-01T00:00,1,2,0.5,1.6,10\n",
            "share a timestamp but differ",
        ),
        (HEADER + "2024-01-01T00:00,1,0.5,2,1.5,10\n", "high below low: 1 row\\(s\\) at line 2"),
        (HEADER + "2024-01-01T00:00,0,2,0.5,1.5,10\n", "non-positive prices"),
        (HEADER + "2024-01-01T00:00,1,2,-0.5,1.5,10\n", "non-positive prices"),
        (HEADER + "2024-01-01T00:00,1,2,0.5,1.5,-10\n", "negative volume"),
        (HEADER + "2024-01-01T00:00,1,2,0.5,abc,10\n", "non-numeric value.*line 2"),
    ],
)
def test_bad_files_raise_and_write_nothing(tmp_path: Path, content: str, message: str) -> None:
    store = tmp_path / "store"
    with pytest.raises(DataError, match=message):
        import_csv(_write(tmp_path / "in.csv", content), "X", "1h", data_dir=store)
    assert not store.exists()


def test_spacing_that_does_not_match_the_timeframe(tmp_path: Path, bars: pd.DataFrame) -> None:
    text = HEADER + _rows(bars, "%Y-%m-%dT%H:%M:%S")
    with pytest.raises(DataError, match=r"median bar spacing is 0 days 01:00:00.*timeframe 1d"):
        import_csv(_write(tmp_path / "in.csv", text), "X", "1d", data_dir=tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        import_csv(tmp_path / "nope.csv", "X", "1h", data_dir=tmp_path)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81" * 100)
    with pytest.raises(DataError, match="not a text CSV"):
        import_csv(tmp_path / "bin.csv", "X", "1h", data_dir=tmp_path)


def test_a_path_that_is_no_csv_file_is_refused_unread(tmp_path: Path) -> None:
    """A FIFO blocked the import forever; a 300-character name was an unexplained OSError."""
    os.mkfifo(tmp_path / "fifo.csv")  # no writer: a plain open() would wait forever
    fifo = tmp_path / "fifo.csv"
    error = raised_within(10, lambda: import_csv(fifo, "X", "1h", data_dir=tmp_path))
    assert isinstance(error, DataError), error
    expected = f"{tmp_path / 'fifo.csv'}: is a pipe (FIFO), not a CSV file; give the file itself"
    assert str(error) == expected
    with pytest.raises(DataError, match=r"/dev/null: is a device, not a CSV file"):
        import_csv(Path("/dev/null"), "X", "1h", data_dir=tmp_path)
    with pytest.raises(DataError, match=r": cannot be read \(File name too long\)$"):
        import_csv(tmp_path / ("x" * 300 + ".csv"), "X", "1h", data_dir=tmp_path)
    with pytest.raises(DataError, match=r": is a folder; give the CSV file to import$"):
        import_csv(tmp_path, "X", "1h", data_dir=tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_invalid_rows_can_be_dropped_on_request(tmp_path: Path, bars: pd.DataFrame) -> None:
    broken = bars.copy()
    broken.iloc[7, broken.columns.get_loc("low")] = broken.iloc[7]["high"] * 2
    text = HEADER + _rows(broken, "%Y-%m-%dT%H:%M:%S")
    report = import_csv(
        _write(tmp_path / "in.csv", text), "X", "1h", data_dir=tmp_path / "store", drop_invalid=True
    )
    assert report.invalid_rows_dropped == {
        "high below low": 1,
        "open or close outside [low, high]": 1,
    }
    assert report.bars == len(bars) - 1


def test_unknown_timeframe_and_bad_symbol(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.csv", HEADER + "2024-01-01T00:00,1,2,0.5,1.5,10\n")
    with pytest.raises(DataError, match="unknown timeframe"):
        import_csv(source, "X", "2h", data_dir=tmp_path)
    with pytest.raises(DataError, match="invalid symbol"):
        import_csv(source, "../x", "1h", data_dir=tmp_path)


@pytest.mark.parametrize("scale", [1, 1000], ids=["seconds", "milliseconds"])
def test_epoch_timestamps(tmp_path: Path, bars: pd.DataFrame, scale: int) -> None:
    epochs = (bars.index.as_unit("s").asi8 * scale).astype(str)
    lines = [
        f"{e},{b.open},{b.high},{b.low},{b.close},{b.volume}"
        for e, (_, b) in zip(epochs, bars.iterrows(), strict=True)
    ]
    report = import_csv(
        _write(tmp_path / "in.csv", HEADER + "\n".join(lines)),
        "X",
        "1h",
        data_dir=tmp_path / "store",
    )
    assert report.timestamp_format.startswith("epoch")
    _assert_imported(tmp_path, bars)


def test_nanosecond_stamps_are_floored_and_import_again_unchanged(
    tmp_path: Path, bars: pd.DataFrame
) -> None:
    # A broker's export with nanosecond stamps; the store keeps microseconds. Importing the same
    # file twice must find the same bars, not bars 250 ns apart.
    body = _rows(bars, "%Y-%m-%dT%H:%M:%S.000000250Z")
    source = _write(tmp_path / "in.csv", HEADER + body)
    first = import_csv(source, "X", "1h", data_dir=tmp_path / "store")
    assert any("floored to microseconds" in note and "line 2" in note for note in first.notes)
    second = import_csv(source, "X", "1h", data_dir=tmp_path / "store")
    assert second.written is not None
    assert (second.written.added, second.written.unchanged) == (0, len(bars))
    _assert_imported(tmp_path, bars)


def test_mixed_offsets_read_naive_rows_in_the_given_zone(
    tmp_path: Path, bars: pd.DataFrame
) -> None:
    # Half the rows carry a UTC offset, half are New York wall times: --tz applies to the latter.
    local = bars.index.tz_convert("America/New_York")
    stamps = [
        t.isoformat() if i % 2 else t.tz_localize(None).isoformat() for i, t in enumerate(local)
    ]
    text = "timestamp,open,high,low,close,volume\n" + "".join(
        f"{stamp},{b.open:.5f},{b.high:.5f},{b.low:.5f},{b.close:.5f},{int(b.volume)}\n"
        for stamp, (_, b) in zip(stamps, bars.iterrows(), strict=True)
    )
    report = import_csv(
        _write(tmp_path / "in.csv", text),
        "X",
        "1h",
        data_dir=tmp_path / "store",
        tz="America/New_York",
    )
    _assert_imported(tmp_path, bars)
    assert any("read in America/New_York" in note for note in report.notes)


def test_dry_run_hits_the_conflicts_the_import_would(tmp_path: Path, bars: pd.DataFrame) -> None:
    text = "timestamp,open,high,low,close,volume\n" + _rows(bars, "%Y-%m-%dT%H:%M:%S")
    source = _write(tmp_path / "in.csv", text)
    import_csv(source, "X", "1h", data_dir=tmp_path / "store")
    stored = (tmp_path / "store" / "X_1h.csv").read_bytes()
    changed = bars.copy()
    changed["volume"] += 1
    _write(source, "timestamp,open,high,low,close,volume\n" + _rows(changed, "%Y-%m-%dT%H:%M:%S"))
    with pytest.raises(DataError, match=r"have different values.*--replace"):
        import_csv(source, "X", "1h", data_dir=tmp_path / "store", dry_run=True)
    report = import_csv(source, "X", "1h", data_dir=tmp_path / "store", dry_run=True, replace=True)
    assert report.written is not None and not report.written.written
    assert report.written.replaced == len(bars)
    assert (tmp_path / "store" / "X_1h.csv").read_bytes() == stored


# --- A broker's export in New York time: weeks open Sunday 17:00 local all year --------------


@pytest.fixture
def new_york_export(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A year of 1h bars as a New York broker exports them: naive local times."""
    bars = generate_bars(
        "EURUSD", "1h", "2024-01-01", "2024-12-31", seed=5, session_tz="America/New_York"
    ).round(5)
    local = bars.copy()
    local.index = bars.index.tz_convert("America/New_York").tz_localize(None)
    # Naive local times repeat once a year (the fall-back hour); a broker's file keeps both
    # bars, which no zone can read unambiguously, so the test export leaves that hour out.
    local = local[~local.index.duplicated(keep=False)]
    path = tmp_path / "broker.csv"
    path.write_text("time,open,high,low,close,volume\n" + _rows(local, "%Y-%m-%d %H:%M:%S"))
    kept = bars[bars.index.tz_convert("America/New_York").tz_localize(None).isin(local.index)]
    return path, kept


def test_new_york_times_read_as_utc_are_flagged_by_their_week_opens(
    tmp_path: Path, new_york_export: tuple[Path, pd.DataFrame]
) -> None:
    path, _ = new_york_export
    report = import_csv(path, "X", "1h", data_dir=tmp_path / "store")
    hint = [n for n in report.notes if "trading weeks open" in n]
    assert len(hint) == 1, report.notes
    assert "Sunday at 17:00 UTC" in hint[0] and "--tz America/New_York --replace" in hint[0]
    right = import_csv(path, "Y", "1h", data_dir=tmp_path / "store", tz="America/New_York")
    assert not [n for n in right.notes if "trading weeks open" in n], right.notes


def test_a_reimport_in_the_right_zone_names_the_shift_and_with_replace_leaves_no_shifted_bar(
    tmp_path: Path, new_york_export: tuple[Path, pd.DataFrame]
) -> None:
    path, truth = new_york_export
    store = tmp_path / "store"
    import_csv(path, "X", "1h", data_dir=store)  # the mistake: read as UTC
    wrong = load_bars("X", "1h", data_dir=store)
    with pytest.raises(DataError, match=r"moved by \+4 or \+5 hour\(s\).*another time zone") as e:
        import_csv(path, "X", "1h", data_dir=store, tz="America/New_York")
    assert "--replace" in str(e.value)
    pd.testing.assert_frame_equal(load_bars("X", "1h", data_dir=store), wrong)  # unchanged
    report = import_csv(path, "X", "1h", data_dir=store, tz="America/New_York", replace=True)
    stored = load_bars("X", "1h", data_dir=store)
    # Only the file's bars, at their real times: none of the shifted ones is left beside them.
    assert stored.index.equals(truth.index), (len(stored), len(truth))
    np.testing.assert_allclose(stored.to_numpy(), truth.to_numpy(), rtol=0, atol=1e-9)
    assert report.written is not None
    assert report.written.total == len(truth)
    assert report.written.removed > 0
    assert [o / pd.Timedelta(hours=1) for o in report.written.offsets] == [4.0, 5.0]


def test_a_reimport_of_the_same_bars_sees_no_shift(
    tmp_path: Path, new_york_export: tuple[Path, pd.DataFrame]
) -> None:
    path, _ = new_york_export
    store = tmp_path / "store"
    import_csv(path, "X", "1h", data_dir=store, tz="America/New_York")
    again = import_csv(path, "X", "1h", data_dir=store, tz="America/New_York")
    assert again.written is not None
    assert again.written.offsets == () and again.written.added == 0
    assert again.written.removed == 0


def _broker_daily(hourly: pd.DataFrame) -> pd.DataFrame:
    """Daily bars cut as a broker cuts them: every UTC day that holds an hourly bar, Sunday's
    two-hour evening included (ktrdr's resample leaves that stub out)."""
    days = hourly.resample("1D").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return days.dropna()


def test_a_broker_daily_file_with_sunday_stubs_is_named_and_can_leave_them_out(
    tmp_path: Path,
) -> None:
    # Imported silently before: a daily file whose Sundays hold two hours of trading.
    hourly = generate_bars("EURUSD", "1h", "2024-01-01", "2024-03-31", seed=4).round(5)
    daily = _broker_daily(hourly)
    sundays = daily.index[daily.index.day_of_week == 6]
    assert len(sundays) == 13  # the last, 2024-03-31, with no Monday after it
    path = tmp_path / "daily.csv"
    path.write_text("time,open,high,low,close,volume\n" + _rows(daily, "%Y-%m-%d"))
    store = tmp_path / "store"

    report = import_csv(path, "X", "1d", data_dir=store)
    [note] = [n for n in report.notes if "Sunday" in n]
    assert note.startswith("13 daily bar(s) open on a Sunday (the first 2024-01-07)")
    assert "--drop-weekend-stubs --replace" in note
    assert report.weekend_stubs_dropped == 0 and len(load_bars("X", "1d", data_dir=store)) == 78

    # Imported again as the note says: the stored stubs go, the days stay, and the store holds
    # what ktrdr's own resample of the hourly bars holds.
    again = import_csv(path, "X", "1d", data_dir=store, drop_weekend_stubs=True, replace=True)
    assert again.weekend_stubs_dropped == 13
    assert not [n for n in again.notes if "Sunday" in n]
    stored = load_bars("X", "1d", data_dir=store)
    assert len(stored) == 65 and not (stored.index.day_of_week == 6).any()
    from ktrdr.data.timeframes import resample_bars

    assert stored.index.equals(resample_bars(hourly, "1h", "1d").index)
