"""Every entry point writes exactly one runs-ledger row per training, where it was started."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ktrdr import train_strategy
from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.cli.main import main
from ktrdr.errors import CancellationError, DataError
from ktrdr.evaluate.walk_forward import plan_folds, walk_forward
from ktrdr.runs.ledger import RunLedger
from ktrdr.sweep.runner import sweep
from tests.conftest import STRATEGIES_DIR
from tests.services import (
    Service,
    api_args,
    free_port,
    running_service,
    start_training,
    wait_for,
    wait_until_ended,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STRATEGY = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
SHORT = {"training.epochs": 2, "training.early_stopping.patience": 2}


@pytest.fixture(autouse=True)
def _ledger_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_LEDGER", "on")


def rows(data_dir: Path) -> list[dict[str, Any]]:
    return RunLedger(f"sqlite:///{data_dir / 'ktrdr.db'}").rows()


def test_python_runs_completed_failed_and_cancelled_are_one_row_each(
    sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ktrdr.runs import ledger

    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", "100")
    # Read this often, even a short run is seen to report several times.
    monkeypatch.setattr(ledger, "FOLLOW_INTERVAL_S", 0.02)
    result = train_strategy(
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-03-31",
        STRATEGY,
        data_dir=sample_data_dir,
        models_dir=models_dir,
        overrides={"training.epochs": 10, "training.early_stopping.patience": 10},
    )
    with pytest.raises(DataError):
        train_strategy(
            ["EURUSD"], ["1h"], "2030-01-01", "2030-03-31", STRATEGY, data_dir=sample_data_dir
        )
    token = ThreadingCancellationToken()
    token.cancel("stopped by the test")
    with pytest.raises(CancellationError):
        train_strategy(
            ["EURUSD"],
            ["1h"],
            "2017-01-01",
            "2017-03-31",
            STRATEGY,
            data_dir=sample_data_dir,
            models_dir=models_dir,
            cancellation_token=token,
        )
    done, failed, cancelled = rows(sample_data_dir)
    assert (done["status"], failed["status"], cancelled["status"]) == (
        "completed",
        "failed",
        "cancelled",
    )
    for row in (done, failed, cancelled):
        assert (row["execution_mode"], row["backend"]) == ("local", "in_process")
        assert row["execution_path"] == "training_executor"  # the rollout at 100%
    assert done["weights_digest"] == result["metadata"]["weights_digest"]
    assert done["test_accuracy"] == result["test_metrics"]["accuracy"]
    assert done["better_baseline"] == result["test_metrics"]["verdict"]["better_baseline"]
    assert set(done["step_seconds"]) >= {str(n) for n in range(1, 12)}
    assert 0.01 <= done["progress_interval_p50_s"] <= done["duration_s"], done
    assert done["progress_interval_p95_s"] >= done["progress_interval_p50_s"]
    assert done["peak_rss_bytes"] > 0
    assert failed["error_type"] == "DataError" and failed["test_accuracy"] is None
    assert cancelled["cancel_latency_s"] is not None and cancelled["cancel_latency_s"] < 5


def test_ktrdr_train_writes_its_row_and_ktrdr_ledger_off_writes_none(
    sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = [
        "train",
        str(STRATEGY),
        "--start",
        "2017-01-01",
        "--end",
        "2017-03-31",
        "--data-dir",
        str(sample_data_dir),
        "--models-dir",
        str(models_dir),
        "--set",
        "training.epochs=2",
    ]
    assert main(command) == 0
    [row] = rows(sample_data_dir)
    assert row["status"] == "completed" and row["execution_path"] == "strategy_trainer"
    monkeypatch.setenv("KTRDR_LEDGER", "off")
    assert main(command) == 0
    assert len(rows(sample_data_dir)) == 1


def test_a_sweep_writes_a_row_per_run_from_its_worker_pool(
    sample_data_dir: Path, models_dir: Path, tmp_path: Path
) -> None:
    spec = {
        "name": "ledgered",
        "strategy": str(STRATEGY),
        "start": "2017-01-01",
        "end": "2017-03-31",
        "grid": {"training.learning_rate": [0.001, 0.003]},
        "fixed": SHORT,
        "save": "none",
        "max_parallel": 2,
    }
    result = sweep(spec, data_dir=sample_data_dir, models_dir=models_dir, output_dir=tmp_path)
    ledger = rows(sample_data_dir)
    assert sorted(r["run_id"] for r in ledger) == sorted(result.runs["run_id"])
    assert all((r["backend"], r["status"]) == ("pool", "completed") for r in ledger)


def test_walk_forward_writes_a_row_per_fold(sample_data_dir: Path) -> None:
    from ktrdr.config import load_strategy_config

    config = load_strategy_config(STRATEGY, SHORT)
    folds = plan_folds("2017-01-01", "2017-08-31", "4M", "2M", "2M")
    result = walk_forward(config, ["EURUSD"], ["1h"], folds, data_dir=str(sample_data_dir))
    ledger = rows(sample_data_dir)
    assert len(ledger) == len(result["folds"]) == 2
    assert [r["run_id"] for r in ledger] == ["fold1", "fold2"]
    assert all(r["backend"] == "in_process" and r["status"] == "completed" for r in ledger)


def test_an_api_operation_is_one_row_with_its_operation_id(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    args = api_args(tmp_path, f"http://127.0.0.1:{free_port()}")
    args[args.index("--data-dir") + 1] = str(sample_data_dir)
    with running_service("api", args, tmp_path / "api.log", env={"KTRDR_LEDGER": "on"}) as api:
        done = start_training(api)
        assert wait_until_ended(api, done)["status"] == "completed"
        refused = start_training(api, start_date="2030-01-01", end_date="2030-03-31")
        assert wait_until_ended(api, refused)["status"] == "failed"
    by_operation = {r["operation_id"]: r for r in rows(sample_data_dir)}
    assert set(by_operation) == {done, refused}
    assert by_operation[done]["status"] == "completed"
    assert by_operation[done]["run_id"] == done
    assert (by_operation[done]["execution_mode"], by_operation[done]["backend"]) == (
        "local",
        "pool",
    )
    assert by_operation[refused]["status"] == "failed"
    assert json.dumps(by_operation[done]["step_seconds"])  # readable JSON


@pytest.mark.host_service
def test_a_host_run_is_one_row_where_it_was_started_on_the_path_chosen_there(
    host: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host's own environment would choose the reference path; this process chose the
    # executor, and the host trains on the path it was sent.
    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", "100")
    here = tmp_path / "here"
    result = train_strategy(
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-03-31",
        STRATEGY,
        execution_mode="host",
        host_url=host.url,
        data_dir=here,
        models_dir=tmp_path / "models",
        overrides=SHORT,
    )
    assert result["metadata"]["execution_path"] == "training_executor"
    [row] = rows(here)
    assert (row["execution_mode"], row["backend"], row["status"]) == ("host", "host", "completed")
    assert row["execution_path"] == "training_executor"
    assert row["weights_digest"] == result["metadata"]["weights_digest"]


@pytest.mark.host_service
def test_an_api_host_operation_is_one_row_in_the_backend_s_ledger(
    api: Service, tmp_path: Path
) -> None:
    operation_id = start_training(api, execution_mode="host")
    assert wait_until_ended(api, operation_id, timeout=180)["status"] == "completed"
    # The operation completes when the host's callback is saved; its run's end (and row) may
    # follow a moment later, when the backend stops following the session.
    [row] = wait_for(lambda: rows(tmp_path / "api-data"), 30, what="the ledger row")
    assert row["operation_id"] == operation_id and row["status"] == "completed"
    assert (row["execution_mode"], row["backend"]) == ("host", "host")
    assert row["test_accuracy"] is not None  # the result came back (by callback) and was read
