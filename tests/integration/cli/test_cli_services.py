"""``ktrdr train --mode host`` and ``ktrdr operations`` against real services."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ktrdr.cli.main import main
from tests.conftest import STRATEGIES_DIR
from tests.services import Service, start_training, wait_until_ended

pytestmark = [pytest.mark.integration, pytest.mark.host_service, pytest.mark.slow]

REAL = str(STRATEGIES_DIR / "neuro_mean_reversion.yaml")
DATES = ["--start", "2017-01-01", "--end", "2017-03-31"]


def test_train_on_the_host_saves_the_model_here(
    host: Service, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            REAL,
            *DATES,
            "--epochs",
            "2",
            "--models-dir",
            str(models_dir),
            "--mode",
            "host",
            "--host-url",
            host.url,
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["metadata"]["execution_mode"] == "host"
    assert Path(result["model_path"]).parent.parent == models_dir
    assert "on the host http://127.0.0.1" in captured.err


def test_host_errors_come_back_with_their_exit_code(
    host: Service, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            REAL,
            "--start",
            "2017-01-01",
            "--end",
            "2017-01-03",
            "--epochs",
            "2",
            "--models-dir",
            str(models_dir),
            "--mode",
            "host",
            "--host-url",
            host.url,
        ]
    )
    assert code == 2  # a DataError on the host is bad input here too
    assert "training host" in capsys.readouterr().err


def test_operations_list_show_and_cancel(
    api: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    operation_id = start_training(api, execution_mode="host", overrides={"training.epochs": 2})
    assert wait_until_ended(api, operation_id)["status"] == "completed"
    capsys.readouterr()
    assert main(["operations", "list", "--api-url", api.url, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["operation_id"] == operation_id and listed["status"] == "completed"
    # Piped, the list keeps whole ids (one tab-separated line each) so they can be copied.
    assert main(["operations", "list", "--api-url", api.url]) == 0
    [header, line] = capsys.readouterr().out.splitlines()
    assert header.startswith("operation\tstatus") and line.startswith(f"{operation_id}\t")
    assert main(["operations", "show", operation_id, "--api-url", api.url]) == 0
    shown = capsys.readouterr().out
    assert "completed" in shown and "neuro_mean_reversion/EURUSD_1h_v1" in shown
    # The verdict: both baselines, the p-value and the sentence, not one flattering baseline.
    flat = " ".join(shown.split())
    assert "training majority" in flat and "test majority" in flat and " · p " in flat
    assert "better baseline" in flat
    assert main(["operations", "cancel", operation_id, "--api-url", api.url]) == 1
    assert "already ended completed" in capsys.readouterr().err
    assert main(["operations", "show", "nope", "--api-url", api.url]) == 1
    assert "HTTP 404" in capsys.readouterr().err

    # A row edited into garbage outside ktrdr is listed with its problem; the others still show.
    with sqlite3.connect(tmp_path / "api-data" / "ktrdr.db") as db:
        db.execute(
            "INSERT INTO operations (operation_id, kind, status, execution_mode, strategy, "
            "request, result, created_at, updated_at) VALUES ('damaged', 'training', "
            "'failed', 'local', 's', '{oops', 'null', 'then', 0)"
        )
    assert main(["operations", "list", "--api-url", api.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert {line.split("\t")[0] for line in lines[1:]} == {operation_id, "damaged"}
    [damaged] = [line for line in lines if line.startswith("damaged\t")]
    assert "request, created_at cannot be read" in damaged and damaged.endswith("\t-")
    assert main(["operations", "show", "damaged", "--api-url", api.url]) == 0
    assert "problem: operation 'damaged' in the operations database" in capsys.readouterr().out
