"""``ktrdr train`` as a user runs it: results, --json, bad input, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ktrdr.cli.main import main
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.integration

REAL = str(STRATEGIES_DIR / "neuro_mean_reversion.yaml")
KTRDR = str(Path(sys.executable).parent / "ktrdr")


def test_train_prints_results_and_saves(
    sample_data_dir: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            REAL,
            "--start",
            "2017-01-01",
            "--end",
            "2017-03-31",
            "--epochs",
            "2",
            "--data-dir",
            str(sample_data_dir),
            "--models-dir",
            str(models_dir),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "baseline" in out and "Splits" in out and "model saved:" in out
    # Both baselines, the p-value, per-class recall, the confusion matrix and a verdict in words.
    assert "training majority" in out and "test majority" in out and "p-value" in out
    assert "recall BUY" in out and "Confusion matrix" in out
    assert "the better baseline" in out
    assert "Step 12/12 Complete" in err  # progress goes to stderr, the final line always
    assert len(list((models_dir / "neuro_mean_reversion").glob("EURUSD_1h_v*"))) == 1


def test_json_output_is_one_document(sample_data_dir: Path, models_dir: Path) -> None:
    result = subprocess.run(
        [
            KTRDR,
            "train",
            REAL,
            "--start",
            "2017-01-01",
            "--end",
            "2017-03-31",
            "--epochs",
            "2",
            "--seed",
            "5",
            "--symbols",
            "EURUSD",
            "--timeframes",
            "1h",
            "--json",
            "--data-dir",
            str(sample_data_dir),
            "--models-dir",
            str(models_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["success"] is True
    assert document["config"]["strategy_config"]["training"]["seed"] == 5
    assert document["training_metrics"]["epochs_configured"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2019-01-01", "--end", "2019-02-01"], "no EURUSD 1h bars from 2019-01-01"),
        (
            ["--start", "2017-01-01", "--end", "2017-03-31", "--set", "training.epoch=3"],
            "training.epoch: unknown key",
        ),
        (
            ["--start", "2017-01-01", "--end", "2017-03-31", "--timeframes", "2h"],
            "unknown timeframe '2h'",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    sample_data_dir: Path,
    models_dir: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code = main(
        ["train", REAL, *args, "--data-dir", str(sample_data_dir), "--models-dir", str(models_dir)]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("Error: ") and message in err
    assert list(models_dir.iterdir()) == []


def test_ctrl_c_cancels_with_a_clear_message_and_saves_nothing(
    sample_data_dir: Path, models_dir: Path
) -> None:
    process = subprocess.Popen(
        [
            KTRDR,
            "train",
            REAL,
            "--start",
            "2017-01-01",
            "--end",
            "2017-09-30",
            "--epochs",
            "500",
            "--set",
            "training.early_stopping=null",
            "--data-dir",
            str(sample_data_dir),
            "--models-dir",
            str(models_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert process.stderr is not None
    # Wait until training is under way, then press Ctrl-C.
    deadline = time.monotonic() + 60
    for line in process.stderr:
        if "Step 7/12" in line or time.monotonic() > deadline:
            break
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)  # latency itself is measured in make bench
    assert process.returncode == 130
    assert out == ""
    assert err.strip().splitlines()[-1].startswith("Error: Cancelled by Ctrl-C during epoch")
    assert "nothing was saved" in err
    assert list(models_dir.iterdir()) == []
