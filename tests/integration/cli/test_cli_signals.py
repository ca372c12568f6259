"""The console entry point (ktrdr.cli.run) and ktrdr.cli.signals: interrupts during start-up,
SIGTERM exit codes, and a reader that closes the pipe."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import default_signal_handlers

pytestmark = pytest.mark.integration

KTRDR = str(Path(sys.executable).parent / "ktrdr")


_SLOW_START = """
import builtins, os, sys
real_import = builtins.__import__

def held_import(name, *args, **kwargs):
    # Hold the import of the CLI until the test has sent its signal: start-up, made slow.
    if name == "ktrdr.cli.main":
        sys.stderr.write("importing\\n")
        sys.stderr.flush()
        os.read(0, 1)
    return real_import(name, *args, **kwargs)

builtins.__import__ = held_import
sys.argv = ["ktrdr", "models", "list", "--json"]
from ktrdr.cli import run
run()
"""


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_an_interrupt_during_start_up_still_prints_the_json_document(
    sig: signal.Signals, code: int, name: str
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_START],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signal_handlers,
    )
    assert process.stderr is not None
    assert process.stderr.readline().strip() == "importing"
    process.send_signal(sig)
    out, err = process.communicate(timeout=30)
    assert process.returncode == code, err
    document = json.loads(out)
    assert document["error"] == {
        "type": "CancellationError",
        "message": f"Cancelled by {name}; nothing was saved",
    }
    assert err.strip() == f"Error: Cancelled by {name}; nothing was saved"


def test_a_closed_pipe_ends_quietly(sample_data_dir: Path) -> None:
    # 'ktrdr data show ... --rows 5000 | head -1': the reader leaves after one line.
    process = subprocess.Popen(
        [
            KTRDR,
            "data",
            "show",
            "EURUSD",
            "1h",
            "--rows",
            "3000",
            "--data-dir",
            str(sample_data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_signal_handlers,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=30) == 141
    assert err == ""
