"""``ktrdr train`` as a user runs it: results, --json, bad input, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ktrdr.async_infrastructure.progress import TRAINING_STEPS, GenericProgressManager
from ktrdr.cli.main import main
from ktrdr.cli.train import _wait_for_the_save
from tests.conftest import STRATEGIES_DIR
from tests.processes import default_signal_handlers

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
    # The Splits table keeps its bar times whole at 80 columns (they read "2017-01-…").
    split_rows = [line for line in out.splitlines() if line.split()[:1] in (["train"], ["test"])]
    assert len(split_rows) == 2 and all(len(line) <= 80 for line in split_rows), split_rows
    assert "…" not in out and "2017-01-0" in split_rows[0]
    # --epochs is an override like --set, and the listing says so.
    assert main(["models", "list", "--models-dir", str(models_dir), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["overrides"] == {"training.epochs": 2}


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


def test_a_training_process_never_imports_torch_dynamo_or_scipy_stats(
    sample_data_dir: Path, models_dir: Path
) -> None:
    """torch._dynamo (about 0.8 s and 71 MiB) and scipy.stats (0.35 s more than scipy.special)
    would be paid by every cold run; training needs neither."""
    script = (
        "import sys\n"
        "from ktrdr.cli.main import main\n"
        f"code = main(['train', {REAL!r}, '--start', '2017-01-01', '--end', '2017-02-28',"
        f" '--epochs', '2', '--data-dir', {str(sample_data_dir)!r},"
        f" '--models-dir', {str(models_dir)!r}])\n"
        "print('exit', code, 'dynamo', 'torch._dynamo' in sys.modules,"
        " 'stats', 'scipy.stats' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().endswith("exit 0 dynamo False stats False"), result.stderr[-2000:]


def _start_training(sample_data_dir: Path, models_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """A long ``ktrdr train`` in a child whose signal handlers are the defaults.

    A test runner started in the background (``make test &``) runs with SIGINT ignored, and a
    child inherits that: resetting it before exec lets Python install its Ctrl-C handler.
    """
    return subprocess.Popen(
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
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
        preexec_fn=default_signal_handlers,
    )


def _wait_for_step_7(process: subprocess.Popen[str]) -> None:
    """Until the training reports its first epoch (so a signal lands during an epoch)."""
    assert process.stderr is not None
    deadline = time.monotonic() + 120
    for line in process.stderr:
        if "Step 7/12" in line and " Epoch " in line:
            return
        assert time.monotonic() < deadline, "no epoch reported within 120 s"
    raise AssertionError(f"training ended before an epoch was reported: {process.wait()}")


def test_ctrl_c_cancels_with_a_clear_message_and_saves_nothing(
    sample_data_dir: Path, models_dir: Path
) -> None:
    process = _start_training(sample_data_dir, models_dir)
    _wait_for_step_7(process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)  # latency itself is measured in make bench
    assert process.returncode == 130
    assert out == ""
    assert err.strip().splitlines()[-1].startswith("Error: Cancelled by Ctrl-C during epoch")
    assert "nothing was saved" in err
    assert list(models_dir.iterdir()) == []


def test_sigterm_stops_like_ctrl_c_with_one_json_document(
    sample_data_dir: Path, models_dir: Path
) -> None:
    process = _start_training(sample_data_dir, models_dir, "--json")
    _wait_for_step_7(process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143
    document = json.loads(out)
    assert document["success"] is False and document["error"]["type"] == "CancellationError"
    assert "Cancelled by SIGTERM" in document["error"]["message"]
    last = err.strip().splitlines()[-1]
    assert (
        last.startswith("Error: Cancelled by SIGTERM during epoch") and "nothing was saved" in last
    )
    assert list(models_dir.iterdir()) == []


@pytest.mark.parametrize(("step", "waits"), [(7, False), (10, True)])
def test_a_second_interrupt_quits_at_once_except_during_the_save(step: int, waits: bool) -> None:
    # Set the handler here: a runner started in the background has SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        manager = GenericProgressManager()
        for number in range(1, step + 1):
            manager.start_step(number, TRAINING_STEPS[number - 1])
        finished = threading.Event()
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        threading.Timer(0.6, finished.set).start()
        if waits:
            _wait_for_the_save(finished, manager)  # returns once the save has finished
            assert finished.is_set()
        else:
            with pytest.raises(KeyboardInterrupt):
                _wait_for_the_save(finished, manager)
            assert not finished.is_set()
    finally:
        signal.signal(signal.SIGINT, previous)
