"""``make compare-paths``: train with the flag on and off; any difference is a failure.

Runs the real strategy on the EURUSD sample, the multi-timeframe strategy on a 2-symbol,
2-timeframe synthetic set, and the same strategy on two symbols of which one has no test rows
(its bars end before the test period), each through TrainingExecutor and through
StrategyTrainer's reference orchestration, with the same data and seed. Prints a side-by-side
table; exits 1 on any difference in the sha256 of the weights, a metric, the feature names or
the importances.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from ktrdr.data.sample import write_sample_data  # noqa: E402
from ktrdr.data.synthetic import write_synthetic_store  # noqa: E402
from ktrdr.store.model_artifact import state_dict_digest  # noqa: E402
from ktrdr.training.path_comparison import comparable  # noqa: E402
from ktrdr.training.run_spec import build_run_spec  # noqa: E402
from ktrdr.training.train_strategy import StrategyTrainer  # noqa: E402

CASES = (
    (
        "EURUSD sample, neuro_mean_reversion",
        "neuro_mean_reversion.yaml",
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-06-30",
        "sample",
    ),
    (
        "synthetic AAA+BBB, 1h+4h, trend_momentum_mtf",
        "trend_momentum_mtf.yaml",
        ["AAA", "BBB"],
        ["1h", "4h"],
        "2023-01-01",
        "2023-05-31",
        "synthetic",
    ),
    (
        "synthetic AAA+CCC (CCC has no test rows), 1h+4h, trend_momentum_mtf",
        "trend_momentum_mtf.yaml",
        ["AAA", "CCC"],
        ["1h", "4h"],
        "2023-01-01",
        "2023-05-31",
        "synthetic",
    ),
)


def run_case(
    strategy: str,
    symbols: list[str],
    timeframes: list[str],
    start: str,
    end: str,
    data_dir: Path,
    models_dir: Path,
) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for flag, label in (("true", "executor"), ("false", "reference")):
        os.environ["USE_TRAINING_EXECUTOR"] = flag
        spec = build_run_spec(
            ROOT / "strategies" / strategy,
            symbols,
            timeframes,
            start,
            end,
            save=False,
            data_dir=data_dir,
            models_dir=models_dir,
        )
        run = StrategyTrainer().train(spec)
        result = run.result
        values = {"weights sha256": state_dict_digest(run.artifact.state_dict)}
        values.update(comparable(result))
        values["execution_path"] = result["metadata"]["execution_path"]
        rows[label] = values
    return rows


def main() -> int:
    console = Console()
    differences = 0
    with tempfile.TemporaryDirectory() as scratch:
        sample = Path(scratch) / "sample"
        write_sample_data(sample)
        synthetic = Path(scratch) / "synthetic"
        write_synthetic_store(synthetic, ["AAA", "BBB"], ["1h", "4h"], "2023-01-01", "2023-05-31")
        # CCC's bars end in March: all its rows fall in the training and validation periods.
        write_synthetic_store(synthetic, ["CCC"], ["1h", "4h"], "2023-01-01", "2023-03-31")
        for title, strategy, symbols, timeframes, start, end, source in CASES:
            data_dir = sample if source == "sample" else synthetic
            rows = run_case(
                strategy, symbols, timeframes, start, end, data_dir, Path(scratch) / "models"
            )
            table = Table(title=title)
            for column in ("key", "TrainingExecutor", "StrategyTrainer (reference)", ""):
                table.add_column(column, overflow="fold")
            keys = sorted(set(rows["executor"]) | set(rows["reference"]))
            case_differences = 0
            for key in keys:
                a, b = rows["executor"].get(key), rows["reference"].get(key)
                same = key == "execution_path" or json.dumps(a) == json.dumps(b)
                case_differences += not same
                if key.startswith("training_metrics.history") or (
                    isinstance(a, list) and len(json.dumps(a)) > 60 and same
                ):
                    a_text = b_text = f"[{len(a) if isinstance(a, list) else '?'} values]"
                else:
                    a_text, b_text = json.dumps(a)[:60], json.dumps(b)[:60]
                table.add_row(key, a_text, b_text, "" if same else "[red]DIFFERS[/red]")
            console.print(table)
            console.print(f"{title}: {case_differences} difference(s)\n")
            differences += case_differences
    os.environ.pop("USE_TRAINING_EXECUTOR", None)
    if differences:
        console.print(f"[red]{differences} difference(s) between the two paths[/red]")
        return 1
    console.print("[green]no difference: both paths give identical results[/green]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
