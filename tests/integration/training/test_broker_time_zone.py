"""A New York broker's bars (weeks from Sunday 17:00 local, 4h bars from 17:00 local, so in UTC
they move by an hour at each DST change): the multi-timeframe strategy trains, predicts across
both 2024 changes and walk-forwards, with no row dropped as stale and no fold aborted."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ktrdr.cli.main import main
from ktrdr.data.synthetic import write_synthetic_store
from tests.conftest import STRATEGIES_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STRATEGY = str(STRATEGIES_DIR / "trend_momentum_mtf.yaml")


def test_a_multi_timeframe_strategy_on_new_york_stamped_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    models = tmp_path / "models"
    write_synthetic_store(
        data, ["EURUSD"], ["1h", "4h"], "2024-01-01", "2024-12-31", session_tz="America/New_York"
    )
    where = ["--data-dir", str(data)]
    with caplog.at_level(logging.WARNING):
        code = main(
            [
                "train",
                STRATEGY,
                "--start",
                "2024-01-01",
                "--end",
                "2024-12-31",
                "--epochs",
                "3",
                "--models-dir",
                str(models),
                *where,
                "--json",
            ]
        )
        out, err = capsys.readouterr()
        assert code == 0, err
        model_id = json.loads(out)["model_id"]
        for start, end in (("2024-03-04", "2024-03-15"), ("2024-10-28", "2024-11-08")):
            code = main(
                [
                    "predict",
                    model_id,
                    "-s",
                    "EURUSD",
                    "--start",
                    start,
                    "--end",
                    end,
                    "--models-dir",
                    str(models),
                    *where,
                    "--json",
                ]
            )
            out, err = capsys.readouterr()
            assert code == 0, err  # both refused before: "context older than one 4h bar"
        code = main(
            [
                "evaluate",
                STRATEGY,
                "--start",
                "2024-01-01",
                "--end",
                "2024-12-31",
                "--walk-forward",
                "--train",
                "4M",
                "--test",
                "1M",
                "--step",
                "2M",
                "--set",
                "training.epochs=3",
                "--output-dir",
                str(tmp_path / "wf"),
                *where,
                "--json",
            ]
        )
        out, err = capsys.readouterr()
    assert code == 0, err
    folds = json.loads(out)["folds"]
    assert len(folds) == 4 and all(fold["error"] is None for fold in folds), folds
    assert "context older than" not in caplog.text
