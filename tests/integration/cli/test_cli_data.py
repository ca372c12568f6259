"""The ``ktrdr data`` and ``ktrdr strategies`` commands through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ktrdr.cli.main import main
from ktrdr.data.store import load_bars
from ktrdr.data.synthetic import generate_bars
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.integration


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_sample_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    code, out, _ = run(capsys, "data", "sample", "--data-dir", store, "--json")
    assert code == 0
    files = {(f["symbol"], f["timeframe"]) for f in json.loads(out)["files"]}
    assert files == {("EURUSD", "1h"), ("GOOGL", "1d"), ("EURUSD", "4h"), ("EURUSD", "1d")}
    code, out, _ = run(capsys, "data", "list", "--data-dir", store, "--json")
    assert code == 0 and len(json.loads(out)) == 4
    code, out, _ = run(capsys, "data", "show", "EURUSD", "1h", "--data-dir", store)
    assert code == 0
    assert "EURUSD 1h: 6225 bars, 2017-01-01 22:00:00+00:00 .. 2017-12-29 21:00:00+00:00" in out
    # The first and last three bars, and between them a row saying how many were left out.
    lines = out.splitlines()
    [between] = [n for n, line in enumerate(lines) if "… 6219 bars …" in line]
    assert "2017-01-01 22:00" in lines[between - 3] and "2017-12-29 21:00" in lines[between + 3]
    assert all(len(line) <= 80 for line in lines[between - 5 : between + 4])


def test_import_from_another_source_equals_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = generate_bars("SRC", "1h", "2024-02-05", "2024-02-16", seed=21).round(6)
    bars["volume"] = 0.0
    # Another source's shape: separate date and time columns, dd.mm.yyyy, an extra column.
    source = tmp_path / "export.csv"
    frame = pd.DataFrame(
        {
            "Date": bars.index.strftime("%d.%m.%Y"),
            "Time": bars.index.strftime("%H:%M"),
            "Open": bars["open"],
            "High": bars["high"],
            "Low": bars["low"],
            "Close": bars["close"],
            "Volume": 0,
            "Spread": 2,
        }
    )
    frame.to_csv(source, index=False)
    store = str(tmp_path / "store")
    code, out, err = run(
        capsys,
        "data",
        "import",
        str(source),
        "--symbol",
        "GBPJPY",
        "--timeframe",
        "1h",
        "--data-dir",
        store,
    )
    assert code == 0, err
    assert "ignored column(s): Spread" in out
    stored = load_bars("GBPJPY", "1h", data_dir=store)
    assert (stored.index == bars.index).all()
    assert (stored.to_numpy() == bars.to_numpy()).all()
    code, out, _ = run(capsys, "data", "show", "GBPJPY", "1h", "--data-dir", store, "--json")
    shown = json.loads(out)
    assert code == 0
    assert shown["bars"] == len(bars) and shown["zero_volume_bars"] == len(bars)
    assert shown["first"] == str(bars.index[0]) and shown["last"] == str(bars.index[-1])


def test_missing_file_and_empty_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    code, _, err = run(
        capsys,
        "data",
        "import",
        str(tmp_path / "nope.csv"),
        "--symbol",
        "X",
        "--timeframe",
        "1h",
        "--data-dir",
        str(store),
    )
    assert code == 2 and "nope.csv: file not found" in err and not store.exists()
    run(capsys, "data", "sample", "--data-dir", str(store))
    code, out, err = run(
        capsys,
        "data",
        "show",
        "EURUSD",
        "1h",
        "--start",
        "2020-01-01",
        "--end",
        "2020-01-31",
        "--data-dir",
        str(store),
    )
    assert code == 2 and out == ""
    assert err.strip() == err.strip().splitlines()[0]  # one line
    assert "no EURUSD 1h bars from 2020-01-01 to 2020-01-31" in err


def test_json_errors_keep_stdout_one_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "data", "show", "EURUSD", "1h", "--data-dir", str(tmp_path), "--json"
    )
    assert code == 2
    document = json.loads(out)
    assert document["success"] is False
    assert document["error"]["type"] == "DataError"
    assert "ktrdr data sample" in document["error"]["message"]
    assert err.startswith("Error: ")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "data", "import")
    assert code == 2 and "Missing argument" in err and len(err.strip().splitlines()) == 1


def test_strategies_validate_and_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    real = str(STRATEGIES_DIR / "neuro_mean_reversion.yaml")
    code, out, _ = run(capsys, "strategies", "validate", real)
    assert code == 0 and "valid" in out and "6 fuzzy sets, 18 features" in out
    code, _, err = run(capsys, "strategies", "validate", real, "--set", "training.epoch=5")
    assert code == 2 and "training.epoch: unknown key" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("- not\n- a mapping\n")
    code, _, err = run(capsys, "strategies", "validate", str(bad))
    assert code == 2 and "expected a YAML mapping" in err
    code, out, _ = run(capsys, "strategies", "list", "--dir", str(STRATEGIES_DIR), "--json")
    assert code == 0 and all(row["valid"] for row in json.loads(out))


def test_console_script_exit_code(tmp_path: Path) -> None:
    ktrdr = Path(sys.executable).parent / "ktrdr"
    result = subprocess.run(
        [str(ktrdr), "data", "show", "NOPE", "1h", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("Error: ") and result.stdout == ""


def test_list_and_show_report_gaps_and_survive_a_corrupt_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    year = generate_bars("SYN", "1h", "2024-01-01", "2024-12-31", seed=2)
    holed = year[(year.index < "2024-03-01") | (year.index >= "2024-08-01")]
    source = tmp_path / "holed.csv"
    holed.to_csv(source, index_label="timestamp")
    code, _, _ = run(
        capsys, "data", "import", str(source), "-s", "SYN", "-t", "1h", "--data-dir", str(store)
    )
    assert code == 0
    (store / "BAD_1h.csv").write_text("timestamp,open,high,low,close,volume\nx,1,2,0.5,oops,1\n")
    code, out, err = run(capsys, "data", "list", "--data-dir", str(store))
    assert code == 0
    assert "SYN 1h gaps: 2024-02-29" in out and "2024-08-01" in out
    assert "BAD_1h.csv" in err and "unreadable" in out
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(store), "--json")
    bad, syn = json.loads(out)
    assert bad["error"] and syn["error"] is None and len(syn["gaps"]) == 1
    code, out, _ = run(capsys, "data", "show", "SYN", "1h", "--data-dir", str(store))
    assert code == 0 and "1 gap(s): 2024-02-29" in out
    code, out, _ = run(capsys, "data", "show", "SYN", "1h", "--data-dir", str(store), "--json")
    assert json.loads(out)["gaps"][0]["resumes"].startswith("2024-08-01")


def test_validate_preview_shows_splits_and_warnings_without_training(
    sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = str(STRATEGIES_DIR / "bollinger_reversion_daily.yaml")
    common = ["--start", "2017-01-01", "--end", "2017-12-31", "--data-dir", str(sample_data_dir)]
    code, out, err = run(capsys, "strategies", "validate", strategy, "--preview", *common)
    assert code == 0, err
    assert "Preview:" in out and "2 warning(s) about these splits" in out
    assert "the test split holds only" in err  # a year of daily bars makes a tiny test split
    code, out, _ = run(capsys, "strategies", "validate", strategy, "--preview", *common, "--json")
    preview = json.loads(out)["preview"]
    assert set(preview["splits"]) == {"train", "validation", "test"}
    assert (
        sum(preview["splits"]["test"]["class_counts"].values()) == preview["splits"]["test"]["rows"]
    )
    assert any("test split holds only" in w for w in preview["warnings"])
    code, _, err = run(capsys, "strategies", "validate", strategy, "--preview")
    assert code == 2 and "--preview needs --start and --end" in err
    assert not any(tmp_path.glob("**/models"))


def test_a_time_zone_mistake_is_flagged_repaired_and_deleted_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = generate_bars(
        "EURUSD", "1h", "2024-01-01", "2024-02-29", seed=2, session_tz="America/New_York"
    )
    local = bars.copy()
    local.index = bars.index.tz_convert("America/New_York").tz_localize(None)
    export = tmp_path / "broker.csv"
    local.to_csv(export, index_label="time")
    store = str(tmp_path / "store")
    importing = ["data", "import", str(export), "-s", "EURUSD", "-t", "1h", "--data-dir", store]
    code, out, _ = run(capsys, *importing)
    assert code == 0 and "note: the trading weeks open on Sunday at 17:00 UTC" in out
    code, _, err = run(capsys, *importing, "--tz", "America/New_York")
    assert code == 2 and "moved by +5 hour(s)" in err  # winter only: one shift
    code, out, _ = run(capsys, *importing, "--tz", "America/New_York", "--replace")
    assert code == 0 and "removed" in out and "+5 hour(s) away" in out
    assert load_bars("EURUSD", "1h", data_dir=store).index.equals(bars.index)

    code, out, _ = run(
        capsys, "data", "delete", "EURUSD", "1h", "--start", "2024-02-01", "--data-dir", store
    )
    assert code == 0 and out.startswith("Deleted ") and "bars left" in out
    assert load_bars("EURUSD", "1h", data_dir=store).index[-1] < pd.Timestamp(
        "2024-02-01", tz="UTC"
    )
    code, out, _ = run(capsys, "data", "delete", "EURUSD", "1h", "--data-dir", store, "--json")
    assert code == 0 and json.loads(out)["remaining"] == 0
    code, _, err = run(capsys, "data", "delete", "EURUSD", "1h", "--data-dir", store)
    assert code == 2 and "does not exist" in err
