"""What ``ktrdr sweep`` shows while it runs: its cost and its lines do not grow with the sweep's
size (a 10,000-run sweep drew a 10,000-row table four times a second and printed a line per run
that never started)."""

from __future__ import annotations

import dataclasses
import io

import pytest
from rich.console import Console

import ktrdr.cli.sweep as cli_sweep
from ktrdr.async_infrastructure.progress import TRAINING_STEPS
from ktrdr.sweep.plan import SweepRun
from ktrdr.sweep.runner import RunState
from ktrdr.training.run_spec import build_run_spec
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

RUNS = 10_000


def states(count: int) -> list[RunState]:
    spec = build_run_spec(
        STRATEGIES_DIR / "neuro_mean_reversion.yaml",
        None,
        None,
        "2017-01-01",
        "2017-03-31",
        save=False,
        run_id="r00001",
    )
    return [
        RunState(SweepRun(i, {"training.seed": i}, dataclasses.replace(spec, run_id=f"r{i:05d}")))
        for i in range(1, count + 1)
    ]


def rendered(table: object) -> str:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_the_live_table_shows_what_moves_within_its_rows() -> None:
    runs = states(RUNS)
    for i, state in enumerate(runs[:60]):  # 60 ended, the latest last
        state.status, state.ended = ("failed" if i % 20 == 0 else "completed"), float(i)
    for state in runs[60:63]:
        state.status, state.started = "running", 100.0
    table = cli_sweep._live_table(runs, 20)
    assert table.row_count == 20
    shown = table.columns[0]._cells
    assert {"r00061", "r00062", "r00063"} <= set(shown)  # every running run
    assert "r00060" in shown and "r00001" not in shown  # the latest to end, not the first
    assert shown == sorted(shown)  # in run order
    assert table.caption == "9937 pending, 3 running, 57 completed, 3 failed (9980 not shown)"
    text = rendered(table)
    assert max(len(line) for line in text.splitlines()) <= 80


def test_the_live_table_fills_with_the_next_runs_to_start() -> None:
    runs = states(5)
    runs[0].status = "running"
    table = cli_sweep._live_table(runs, 3)
    assert table.columns[0]._cells == ["r00001", "r00002", "r00003"]
    assert table.caption == "4 pending, 1 running (2 not shown)"
    assert cli_sweep._live_table(runs, 10).caption == "4 pending, 1 running"


def test_plain_lines_say_nothing_of_waiting_runs_and_count_those_cancelled_unstarted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli_sweep, "stderr", Console(file=out, width=200, color_system=None))
    runs = states(RUNS)
    report = cli_sweep._plain_reporter([runs])
    report()
    assert out.getvalue() == ""
    runs[0].status = "running"
    runs[0].snapshot = {"step_number": 2, "step_name": "indicators"}
    report()
    assert out.getvalue().splitlines() == [
        "r00001 running training.seed=1",
        f"r00001 step 2/{len(TRAINING_STEPS)}: indicators",
    ]
    runs[0].status = "cancelled"
    for state in runs[1:]:
        state.status = "cancelled"
    report()
    assert out.getvalue().splitlines()[2:] == [
        "r00001 cancelled training.seed=1",
        f"{RUNS - 1} run(s) cancelled before they started",
    ]
    report()  # nothing changed: nothing said
    assert len(out.getvalue().splitlines()) == 4
