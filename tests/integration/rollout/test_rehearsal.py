"""The rollout rehearsal in its reduced form: the backend and the host on loopback, each stage
with every run shadowed, the injected error and late-cancel faults failing the canary gate, and
a rollback to 0% sending every new run to the reference path without a restart.

Four runs a stage of three epochs (a fifth of a second each) are too few and too noisy for the
duration ratio (the full rehearsal, ``scripts/rollout-rehearsal.sh``, trains 16 runs a stage
for 40 epochs and injects the 20% slowdown too), so a healthy stage here may fail that gate and
no other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ktrdr.runs.ledger import RunLedger
from tests.processes import default_signal_handlers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "rollout_rehearsal.py"


def test_the_reduced_rehearsal_fails_each_fault_and_rolls_back(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--runs",
            "4",
            "--epochs",
            "3",
            "--faults",
            "errors,late-cancel",
            "--out",
            str(tmp_path / "rehearsal"),
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=default_signal_handlers,
    )
    assert results.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    stages = json.loads(results.read_text())
    verdicts = {(r["stage"], r["fault"]): r["verdict"] for r in stages}
    failed = {(r["stage"], r["fault"]): set(r["failed_gates"]) for r in stages}
    for stage in ("canary 10%", "expanded 50%", "full 100%"):
        # Healthy: nothing fails but, at most, the duration ratio of four noisy runs.
        assert failed[(stage, "none")] <= {"duration ratio (median)"}, (stage, done.stdout)
    assert verdicts[("canary 10%", "errors")] == "FAIL", done.stdout
    assert "executor error rate" in failed[("canary 10%", "errors")], done.stdout
    assert verdicts[("canary 10%", "late-cancel")] == "FAIL", done.stdout
    assert "executor cancellation latency p95 (s)" in failed[("canary 10%", "late-cancel")]
    assert verdicts[("rollback 0%", "none")] == "PASS", done.stdout
    rows = RunLedger(f"sqlite:///{tmp_path / 'rehearsal' / 'data' / 'ktrdr.db'}").rows()
    shadows = [r for r in rows if r["shadow"]]
    assert shadows and all(r["shadow"] != "mismatch" for r in shadows)
    assert {r["execution_mode"] for r in rows} == {"local", "host"}
    assert "verdict: FAIL" in done.stdout and "Rollout, runs that ended since" in done.stdout
