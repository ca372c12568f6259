"""The backend trains through the host service: the model arrives by callback (or is pulled),
is saved once, reloads, and predicts what a local run of the same seed predicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ktrdr.api.trainings import STOPPED_WHILE_RUNNING as API_STOPPED
from ktrdr.config import load_strategy_config
from ktrdr.host_service.sessions import STOPPED_WHILE_RUNNING
from ktrdr.store.model_artifact import state_dict_digest
from ktrdr.store.model_storage import ModelStorage
from ktrdr.training.train_strategy import StrategyTrainer
from tests.conftest import STRATEGIES_DIR
from tests.services import (
    LONG,
    Q1,
    Service,
    api_args,
    free_port,
    operation,
    running_service,
    start_training,
    stop,
    wait_for,
    wait_until_ended,
    wait_until_training,
)

pytestmark = [pytest.mark.integration, pytest.mark.host_service, pytest.mark.slow]


def test_a_host_training_is_saved_by_the_backend_and_matches_a_local_run(
    api: Service, host: Service, tmp_path: Path, sample_data_dir: Path
) -> None:
    operation_id = start_training(api, execution_mode="host")
    op = wait_until_ended(api, operation_id)
    assert op["status"] == "completed", op
    assert op["execution_mode"] == "host" and op["progress"]["percentage"] == 100
    # The backend may mark it completed before its answer reaches the host (or answer a retry
    # after a slow save timed the first attempt out): wait for the host to hear it.
    wait_for(
        lambda: host.get(f"/training/status/{operation_id}").json()["callback_delivered"],
        60,
        what="the host hearing its callback answered",
    )

    storage = ModelStorage(tmp_path / "models")
    [stored] = storage.list_models("neuro_mean_reversion")
    assert stored.model_id == op["model_id"] == op["result"]["model_id"]
    remote = storage.load(stored.model_id)

    config = load_strategy_config(
        STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 3}
    )
    local_trainer = StrategyTrainer(tmp_path / "local-models", sample_data_dir)
    local = local_trainer.train_multi_symbol_strategy(
        config, ["EURUSD"], ["1h"], Q1["start_date"], Q1["end_date"]
    )
    assert state_dict_digest(remote.state_dict) == state_dict_digest(
        ModelStorage(tmp_path / "local-models").load(local["model_id"]).state_dict
    )
    assert op["result"]["test_metrics"] == local["test_metrics"]

    strategies = api.get("/api/v1/strategies").json()["strategies"]
    entry = next(s for s in strategies if s["name"] == "neuro_mean_reversion")
    assert entry["trained"] is True and entry["versions"] == 1
    assert entry["latest_model_id"] == op["model_id"]
    assert entry["latest_metrics"]["test_accuracy"] == local["test_metrics"]["accuracy"]
    # Both baselines, the p-value and the verdict, as the training's own result has them.
    test = local["test_metrics"]
    latest = entry["latest_metrics"]
    assert latest["baseline_accuracy"] == test["baseline_accuracy"]
    assert latest["test_majority_baseline_accuracy"] == test["test_majority_baseline_accuracy"]
    assert latest["p_value"] == test["p_value"]
    assert (
        latest["verdict"] == test["verdict"] and latest["verdict"]["sentences"] == local["verdict"]
    )


def test_cancelling_a_host_training_stops_the_host_and_saves_nothing(
    api: Service, host: Service, tmp_path: Path
) -> None:
    operation_id = start_training(api, execution_mode="host", **LONG)
    wait_until_training(api, operation_id)
    assert api.delete(f"/api/v1/operations/{operation_id}").status_code == 200
    op = wait_until_ended(api, operation_id, timeout=30)
    assert op["status"] == "cancelled", op
    assert host.get(f"/training/status/{operation_id}").json()["status"] == "cancelled"
    assert not (tmp_path / "models" / "neuro_mean_reversion").exists()
    # A second cancel of an ended operation is a conflict, not a crash.
    assert api.delete(f"/api/v1/operations/{operation_id}").status_code == 409


def test_a_callback_that_cannot_be_delivered_is_pulled_and_saved_once(
    host: Service, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    args = api_args(tmp_path, host.url, "--public-url", dead)
    with running_service("api", args, tmp_path / "api.log") as api:
        operation_id = start_training(api, execution_mode="host")
        op = wait_until_ended(api, operation_id, timeout=120)
        assert op["status"] == "completed", op
        # The pull may save it before the host's last retry: wait for that retry to fail.
        wait_for(
            lambda: "attempt 4/4" in host.log.read_text(),  # first try, then 1, 2 and 4 s later
            60,
            what="the host's last callback retry",
        )
        status = host.get(f"/training/status/{operation_id}").json()
        assert status["callback_delivered"] is False

        # The host still answers the pull; a duplicate delivery saves nothing more.
        payload = host.get(f"/training/result/{operation_id}").json()
        again = api.post("/api/v1/trainings/results", json=payload)
        assert again.status_code == 200 and again.json()["model_id"] == op["model_id"]
        versions = ModelStorage(tmp_path / "models").list_models("neuro_mean_reversion")
        assert [v.model_id for v in versions] == [op["model_id"]]


def test_a_tampered_model_payload_is_refused_and_nothing_is_saved(
    api: Service, host: Service, tmp_path: Path
) -> None:
    operation_id = start_training(api, execution_mode="host", **LONG)
    wait_until_training(api, operation_id)
    payload = {
        "session_id": operation_id,
        "status": "completed",
        "result": {"model_id": "x"},
        "artifact": {"encoding": "gzip+base64", "sha256": "0" * 64, "size": 10, "data": "AAAA"},
    }
    refused = api.post("/api/v1/trainings/results", json=payload)
    assert refused.status_code == 400 and "refused" in refused.json()["detail"]
    assert not (tmp_path / "models" / "neuro_mean_reversion").exists()
    unknown = api.post("/api/v1/trainings/results", json={**payload, "session_id": "nope"})
    assert unknown.status_code == 404
    assert api.delete(f"/api/v1/operations/{operation_id}").status_code == 200
    assert wait_until_ended(api, operation_id, timeout=30)["status"] == "cancelled"


def test_requests_are_checked_before_anything_runs(api: Service, host: Service) -> None:
    base = {"symbols": ["EURUSD"], "timeframes": ["1h"], **Q1}
    bad = [
        {**base},  # no strategy
        {**base, "strategy_name": "../etc/passwd"},
        {**base, "strategy_name": "neuro_mean_reversion", "symbols": ["../../x"]},
        {**base, "strategy_name": "neuro_mean_reversion", "execution_mode": "gpu"},
        {**base, "strategy_name": "neuro_mean_reversion", "unknown": 1},
        {**base, "strategy_name": "no_such_strategy"},
        {**base, "strategy_name": "neuro_mean_reversion", "overrides": {"training.epochs": -1}},
        {**base, "strategy_yaml": "[1, 2]"},
    ]
    for body in bad:
        response = api.post("/api/v1/trainings/start", json=body)
        assert response.status_code == 422, (body, response.text)
    assert api.get("/api/v1/operations/unknown").status_code == 404
    assert api.delete("/api/v1/operations/unknown").status_code == 404
    assert api.get("/api/v1/operations").json()["operations"] == []
    # The host refuses what it cannot run, naming it.
    missing = host.post(
        "/training/start",
        json={
            "strategy_yaml": (STRATEGIES_DIR / "neuro_mean_reversion.yaml").read_text(),
            "symbols": ["NOPE"],
            "timeframes": ["1h"],
            **Q1,
        },
    )
    assert missing.status_code == 422 and "NOPE 1h" in missing.json()["detail"]
    assert host.post("/training/start", json={"callback_url": "file:///x"}).status_code == 422
    assert host.get("/training/status/unknown").status_code == 404
    assert host.post("/training/stop", json={"session_id": "unknown"}).status_code == 404
    assert host.get("/training/result/unknown").status_code == 404
    huge = api.post(
        "/api/v1/trainings/start",
        content=b"x" * (2 * 2**20),
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    results = api.post(
        "/api/v1/trainings/results",
        content=b"x" * (200 * 2**20),
        headers={"content-type": "application/json"},
    )
    assert results.status_code == 413


def test_the_default_mode_changes_at_runtime(api: Service) -> None:
    assert api.get("/api/v1/trainings/config").json()["default_execution_mode"] == "local"
    changed = api.put("/api/v1/trainings/config", json={"default_execution_mode": "host"})
    assert changed.json()["default_execution_mode"] == "host"
    # The rollout's settings are untouched by a change of the mode.
    assert changed.json()["rollout_percent"] == 0
    operation_id = start_training(api)
    assert operation(api, operation_id)["execution_mode"] == "host"
    assert wait_until_ended(api, operation_id)["status"] == "completed"
    assert (
        api.put("/api/v1/trainings/config", json={"default_execution_mode": "x"}).status_code == 422
    )


def test_the_openapi_document_lists_every_route(api: Service) -> None:
    paths = set(json.loads(api.get("/openapi.json").text)["paths"])
    assert {
        "/api/v1/trainings/start",
        "/api/v1/trainings/results",
        "/api/v1/trainings/config",
        "/api/v1/operations",
        "/api/v1/operations/{operation_id}",
        "/api/v1/strategies",
    } <= paths


def test_a_full_host_answers_503_and_a_repeated_session_id_finds_its_session(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    args = ["--data-dir", str(sample_data_dir), "--max-running", "1", "--max-pending", "0"]
    with running_service("host", args, tmp_path / "full-host.log") as host:
        body = {
            "strategy_yaml": (STRATEGIES_DIR / "neuro_mean_reversion.yaml").read_text(),
            "symbols": ["EURUSD"],
            "timeframes": ["1h"],
            "start_date": LONG["start_date"],
            "end_date": LONG["end_date"],
            "overrides": LONG["overrides"],
            "session_id": "first",
        }
        assert host.post("/training/start", json=body).json()["session_id"] == "first"
        again = host.post("/training/start", json=body)
        assert again.status_code == 200 and again.json()["session_id"] == "first"
        full = host.post("/training/start", json={**body, "session_id": "second"})
        assert full.status_code == 503 and "busy" in full.json()["detail"]
        # Status stays quick while the worker trains: it is served from memory.
        assert host.get("/training/status/first").json()["status"] in ("pending", "running")
        assert host.post("/training/stop", json={"session_id": "first"}).status_code == 200


@pytest.mark.parametrize(
    ("flag", "path"), [("false", "strategy_trainer"), ("true", "training_executor")]
)
def test_the_executor_flag_chooses_the_path_of_a_host_training(
    flag: str, path: str, sample_data_dir: Path, tmp_path: Path
) -> None:
    # The flag is the host's own setting: the host trains through the facade like any run.
    with (
        running_service(
            "host",
            ["--data-dir", str(sample_data_dir)],
            tmp_path / "host.log",
            env={"USE_TRAINING_EXECUTOR": flag},
        ) as host,
        running_service("api", api_args(tmp_path, host.url), tmp_path / "api.log") as api,
    ):
        operation_id = start_training(api, execution_mode="host", overrides={"training.epochs": 1})
        op = wait_until_ended(api, operation_id)
    assert op["status"] == "completed", op
    assert op["execution_mode"] == "host"
    assert op["result"]["metadata"]["execution_path"] == path
    assert op["result"]["metadata"]["host_session_id"] == operation_id


def test_a_stopped_host_reports_its_training_as_stopped_not_cancelled(
    api: Service, host: Service
) -> None:
    operation_id = start_training(api, execution_mode="host", **LONG)
    wait_until_training(api, operation_id)
    stop(host)  # SIGTERM, what a service manager sends
    assert host.process.returncode == 0
    op = wait_until_ended(api, operation_id, timeout=60)
    assert op["status"] == "failed", op
    assert op["error"] == STOPPED_WHILE_RUNNING  # delivered by the stopping host itself
    log = host.log.read_text()
    assert "ktrdr training host stopped by SIGTERM" in log
    assert "leaked semaphore" not in log and "Cancelled by" not in log


def test_a_host_training_goes_on_through_a_backend_restart(
    host: Service, sample_data_dir: Path, tmp_path: Path
) -> None:
    args = api_args(tmp_path, host.url, "--database-url", f"sqlite:///{tmp_path / 'ops.db'}")
    args[args.index("--data-dir") + 1] = str(sample_data_dir)
    with running_service("api", args, tmp_path / "api.log") as api:
        on_host = start_training(api, execution_mode="host", **LONG)
        local = start_training(api, execution_mode="local", **LONG)
        wait_until_training(api, on_host)
        wait_until_training(api, local)
        stop(api)
        assert api.process.returncode == 0
        assert "ktrdr API stopped by SIGTERM" in api.log.read_text()
    # The host was not told to stop: the backend going away is no reason to lose the training.
    assert host.get(f"/training/status/{on_host}").json()["status"] == "running"
    with running_service("api", args, tmp_path / "api2.log") as api:
        stopped = operation(api, local)
        assert stopped["status"] == "failed" and stopped["error"] == API_STOPPED
        assert operation(api, on_host)["status"] == "running"
        # The new backend follows it: its progress moves, and a cancel reaches the host.
        before = operation(api, on_host)["updated_at"]
        wait_for(
            lambda: operation(api, on_host)["updated_at"] > before,
            60,
            what="progress of the resumed training",
        )
        assert api.delete(f"/api/v1/operations/{on_host}").status_code == 200
        assert wait_until_ended(api, on_host, timeout=60)["status"] == "cancelled"
        assert host.get(f"/training/status/{on_host}").json()["status"] == "cancelled"
