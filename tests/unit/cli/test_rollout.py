"""``ktrdr rollout status|gate`` over a runs ledger."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from ktrdr.cli import rollout as rollout_cli
from ktrdr.cli.main import main
from ktrdr.runs.ledger import RunLedger
from tests.unit.runs.test_gates import ledger

pytestmark = pytest.mark.unit


def _store(folder: Path, age_s: float = 0.0, **fault: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    book = RunLedger(f"sqlite:///{folder / 'ktrdr.db'}")
    ended = time.time() - age_s
    for row in ledger(**fault):  # type: ignore[arg-type]
        book.record({**row, "ended_at": ended, "run_id": "r"})
    book.close()
    return folder


def test_status_is_a_table_that_fits_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(tmp_path)
    buffer = io.StringIO()
    monkeypatch.setattr(rollout_cli, "stdout", Console(file=buffer, width=80, force_terminal=False))
    assert main(["rollout", "status", "--data-dir", str(tmp_path)]) == 0
    text = buffer.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "executor" in text and "reference" in text and "duration ratio" in text
    assert "accuracy difference on matched runs: +0.0000 (35 run key(s))" in text


def test_gate_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    healthy = _store(tmp_path / "healthy")
    failing = _store(tmp_path / "failing", failing_every=5)
    assert main(["rollout", "gate", "--stage", "canary", "--data-dir", str(healthy)]) == 0
    assert main(["rollout", "gate", "--stage", "canary", "--data-dir", str(failing)]) == 1
    assert main(["rollout", "gate", "--stage", "cleanup", "--data-dir", str(healthy)]) == 3
    capsys.readouterr()
    code = main(["rollout", "gate", "--stage", "canary", "--json", "--data-dir", str(failing)])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document["verdict"] == "FAIL"
    [errors] = [g for g in document["gates"] if g["name"] == "executor error rate"]
    assert errors["verdict"] == "FAIL" and errors["threshold"] == 0.01
    # Rows that ended before the window are left out: an hour-old healthy rollout passes over
    # two hours and has nothing to judge over thirty minutes.
    old = _store(tmp_path / "old", age_s=3600)
    window = ["rollout", "gate", "--stage", "canary", "--data-dir", str(old), "--since"]
    assert main([*window, "2h"]) == 0
    assert main([*window, "30m"]) == 3
    assert main([*window, "soon"]) == 2  # not a duration: bad input


def test_the_window_may_start_at_a_moment(tmp_path: Path) -> None:
    old = _store(tmp_path / "old", age_s=3600)
    window = ["rollout", "gate", "--stage", "canary", "--data-dir", str(old), "--since"]

    def moment(seconds_ago: float, zone: bool = True) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - seconds_ago))
        return stamp + ("Z" if zone else "")

    assert main([*window, moment(7200)]) == 0
    assert main([*window, moment(7200, zone=False)]) == 0  # UTC unless it names its zone
    assert main([*window, moment(1800)]) == 3
    assert main([*window, moment(-3600)]) == 2  # to come: bad input
    assert main([*window, "2026-13-45T00:00"]) == 2
