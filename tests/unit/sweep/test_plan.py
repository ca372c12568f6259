"""Sweep files and their runs: everything is checked before a run starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.cli.main import main
from ktrdr.errors import StrategyConfigError
from ktrdr.sweep.plan import plan_runs
from ktrdr.sweep.spec import load_sweep
from tests.conftest import STRATEGIES_DIR, raised_within

pytestmark = pytest.mark.unit

STRATEGY = STRATEGIES_DIR / "neuro_mean_reversion.yaml"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: s\nstrategy: {STRATEGY}\nstart: 2017-01-01\nend: 2017-03-31\n{body}")
    return path


def test_runs_expand_in_order_with_their_overrides(tmp_path: Path) -> None:
    spec, base = load_sweep(
        write(
            tmp_path,
            "timeframe_sets: [[1h], [4h, 1h]]\n"
            "grid: {training.seed: [1, 2], training.learning_rate: [0.001, 0.01]}\n"
            "fixed: {training.epochs: 3}\n",
        )
    )
    runs = plan_runs(spec, base)
    assert [r.run_id for r in runs] == [f"r{i:03d}" for i in range(1, 9)]
    assert runs[0].timeframes == ("1h",) and runs[4].timeframes == ("1h", "4h")
    assert runs[1].grid_values == {"training.seed": 1, "training.learning_rate": 0.01}
    assert runs[1].overrides == {"training.epochs": 3, **runs[1].grid_values}
    assert runs[2].spec.strategy["training"]["seed"] == 2 and runs[2].seed == 2
    assert all(r.symbols == ("EURUSD",) for r in runs)  # the strategy's own symbols
    assert spec.start == "2017-01-01"  # YAML dates become text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("grid: {training.learing_rate: [0.1]}\n", r"run r001 \(training.learing_rate=0.1\).*"),
        ("grid: {training.epochs: [5, -1]}\n", r"run r002 \(training.epochs=-1\).*epochs"),
        ("grid: {training.epochs: []}\n", "grid.*has no values"),
        ("gird: {training.epochs: [5]}\n", "gird: unknown key; valid keys"),
        ("save: sometimes\n", "save"),
        ("symbol_sets: [[]]\n", "empty set"),
        ("symbol_sets: [['../x']]\n", "symbol_sets"),
        ("best_by: profit\n", "best_by"),
        # Choosing on the test split makes the chosen run's test figures optimistic.
        ("best_by: test_accuracy\n", "ranks the runs on the test split.*val_edge"),
    ],
)
def test_a_bad_sweep_names_the_run_and_the_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(StrategyConfigError, match=message):
        spec, base = load_sweep(write(tmp_path, body))
        plan_runs(spec, base)


def test_a_huge_grid_needs_a_yes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "grid: {training.seed: "
        + str(list(range(100)))
        + ", training.epochs: "
        + str(list(range(1, 101)))
        + "}\n",
    )
    assert main(["sweep", str(path)]) == 2
    assert "10,000 runs; run it with --yes" in capsys.readouterr().err
    assert main(["sweep", str(write(tmp_path, "grid: {training.nope: [1]}\n"))]) == 2
    assert "run r001" in capsys.readouterr().err
    assert main(["sweep", str(write(tmp_path, "grid: {training.seed: []}\n"))]) == 2
    assert "has no values" in capsys.readouterr().err


def test_the_example_sweep_plans() -> None:
    spec, base = load_sweep(STRATEGIES_DIR.parent / "examples" / "nmr_lr_sweep.yaml")
    runs = plan_runs(spec, base)
    assert len(runs) == 8 and spec.save == "best"


def test_the_ranked_table_shows_missing_values_as_empty_cells() -> None:
    import pandas as pd
    from rich.console import Console

    from ktrdr.cli.sweep import _ranked_table
    from ktrdr.sweep.runner import SUMMARY_COLUMNS, SweepResult

    rows = pd.DataFrame(
        [
            {
                "run_id": "r001",
                "status": "completed",
                "symbols": "EURUSD,GBPUSD",
                "timeframes": "1h,4h",
                "grid": {"training.seed": 1, "training.learning_rate": 0.003},
                "test_accuracy": 0.474,
                "baseline_accuracy": 0.417,
                "test_majority_baseline_accuracy": 0.509,
                "test_edge": 0.474 - 0.509,
                "p_value": 0.985,
                "val_accuracy": 0.52,
                "val_edge": 0.031,
                "model_id": "s/EURUSD_1h_v1",
                "error": None,
            },
            {
                "run_id": "r002",
                "status": "failed",
                "symbols": "EURUSD",
                "timeframes": "1h",
                "grid": {"training.seed": 2},
                "test_accuracy": None,
                "baseline_accuracy": None,
                "test_majority_baseline_accuracy": None,
                "p_value": None,
                "model_id": None,
                "error": "DataError: no bars",
            },
        ],
        columns=list(SUMMARY_COLUMNS),
    )
    result = SweepResult("s", Path("x"), rows, "r001", "val_edge", False, "local", 1.0)
    console = Console(record=True, width=80)
    console.print(_ranked_table(result))  # NaN cells once raised NotRenderableError
    text = console.export_text()
    flat = " ".join(text.split())
    assert "failed: DataError: no bars" in flat and "nan" not in text
    # What it ranks by, the edge over each run's own baseline, the symbols; nothing cut.
    assert "ranked by val_edge on validation" in flat
    assert "val edge" in flat and "test edge" in flat and "EURUSD,GBPUSD" in flat
    assert "+0.031" in flat and "-0.035" in flat and "0.985" in flat
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    by_accuracy = SweepResult("s", Path("x"), rows, "r001", "val_accuracy", False, "local", 1.0)
    console = Console(record=True, width=80)
    console.print(_ranked_table(by_accuracy))
    shown = " ".join(console.export_text().split())
    assert "val accuracy" in shown and "0.520" in shown and "val edge" in shown


def test_a_sweep_path_that_is_no_regular_file_is_refused_unread(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "sweep.yaml"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        error = raised_within(10, lambda path=path: load_sweep(path))
        assert isinstance(error, StrategyConfigError), error
        assert f"{path}: not a regular file" in str(error)


def test_the_strategy_file_is_read_and_parsed_once_for_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ktrdr.config.loader as loader

    seeds = list(range(1, 301))
    spec, base = load_sweep(write(tmp_path, f"grid: {{training.seed: {seeds}}}\n"))
    parsed: list[str] = []
    real = loader.load_yaml
    monkeypatch.setattr(loader, "load_yaml", lambda text: parsed.append(text) or real(text))
    runs = plan_runs(spec, base, confirm=True)
    assert len(runs) == 300 and len(parsed) == 1  # 10,000 runs once parsed it 10,000 times
    assert [r.seed for r in runs] == seeds  # each run still validated with its own values
    assert runs[0].spec.strategy is not runs[1].spec.strategy


def test_a_run_refused_by_the_strategy_names_the_strategy_file(tmp_path: Path) -> None:
    spec, base = load_sweep(write(tmp_path, "grid: {training.epochs: [5, -1]}\n"))
    with pytest.raises(StrategyConfigError) as refused:
        plan_runs(spec, base)
    assert f"run r002 (training.epochs=-1): {STRATEGY}: training.epochs" in str(refused.value)
