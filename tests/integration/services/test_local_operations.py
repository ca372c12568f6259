"""Local operations: run in worker processes, survive crashes and restarts, never cross-talk."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ktrdr.store.model_storage import ModelStorage
from tests.services import (
    LONG,
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

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def local_api(sample_data_dir: Path, tmp_path: Path) -> Service:
    """An API whose local runs read the sample store; no host (its URL answers nothing)."""
    args = api_args(tmp_path, f"http://127.0.0.1:{free_port()}")
    args[args.index("--data-dir") + 1] = str(sample_data_dir)
    with running_service("api", [*args, "--max-running", "2"], tmp_path / "api.log") as api:
        yield api


def test_eight_trainings_at_once_complete_as_distinct_versions(
    local_api: Service, tmp_path: Path
) -> None:
    ids = [start_training(local_api, overrides={"training.epochs": 2 + i}) for i in range(8)]
    # Cancel one while the others run: only that one stops.
    assert local_api.delete(f"/api/v1/operations/{ids[7]}").status_code == 200
    ops = {i: wait_until_ended(local_api, i, timeout=240) for i in ids}
    assert ops[ids[7]]["status"] == "cancelled"
    done = [ops[i] for i in ids[:7]]
    assert all(op["status"] == "completed" for op in done), [op["error"] for op in done]
    assert len({op["model_id"] for op in done}) == 7
    for i, op in zip(ids[:7], done, strict=True):
        assert op["progress"]["operation_id"] == i  # each saw its own progress only
        assert (
            op["result"]["training_metrics"]["epochs"]
            <= op["request"]["overrides"]["training.epochs"]
        )
    versions = ModelStorage(tmp_path / "models").list_models("neuro_mean_reversion")
    assert sorted(v.version for v in versions) == list(range(1, 8))


def test_a_killed_worker_fails_its_operation_and_the_service_stays_up(
    local_api: Service, tmp_path: Path
) -> None:
    operation_id = start_training(local_api, **LONG)
    wait_until_training(local_api, operation_id)
    worker = local_api.training_worker(operation_id)
    os.kill(worker, signal.SIGKILL)
    op = wait_until_ended(local_api, operation_id, timeout=10)
    assert op["status"] == "failed" and "SIGKILL" in op["error"], op
    assert local_api.get("/health").status_code == 200
    # The service still trains.
    after = start_training(local_api)
    assert wait_until_ended(local_api, after)["status"] == "completed"
    assert not list((tmp_path / "models").rglob("*_v2"))


def test_a_restarted_backend_lists_finished_operations_and_fails_the_orphaned_one(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    args = api_args(tmp_path, f"http://127.0.0.1:{free_port()}")
    args[args.index("--data-dir") + 1] = str(sample_data_dir)
    database = f"sqlite:///{tmp_path / 'ops.db'}"
    args += ["--database-url", database]
    with running_service("api", args, tmp_path / "api.log") as api:
        finished = start_training(api)
        assert wait_until_ended(api, finished)["status"] == "completed"
        running = start_training(api, **LONG)
        wait_until_training(api, running)
        worker = api.training_worker(running)
        api.process.kill()  # no goodbye: the backend dies mid-operation
        api.process.wait()
        stop(api)
    with running_service("api", args, tmp_path / "api2.log") as api:
        assert operation(api, finished)["status"] == "completed"
        orphan = operation(api, running)
        assert orphan["status"] == "failed" and "backend restarted" in orphan["error"]
        listed = {op["operation_id"] for op in api.get("/api/v1/operations").json()["operations"]}
        assert {finished, running} <= listed
        # The old worker noticed its parent was gone and stopped: nothing was saved for it.
        wait_for(lambda: not _alive(worker), 30, what="the orphaned worker to exit")
    versions = ModelStorage(tmp_path / "models").list_models("neuro_mean_reversion")
    assert len(versions) == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) is gone for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_every_route_but_health_needs_the_token_when_one_is_set(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    env = {"KTRDR_SERVICE_TOKEN": "s3cret"}
    with running_service(
        "host", ["--data-dir", str(sample_data_dir)], tmp_path / "host.log", env=env
    ) as host:
        args = api_args(tmp_path, host.url)
        with running_service("api", args, tmp_path / "api.log", env=env) as api:
            good = {"Authorization": "Bearer s3cret"}
            for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret"}):
                assert api.get("/api/v1/operations", headers=wrong).status_code == 401
                assert api.get("/api/v1/strategies", headers=wrong).status_code == 401
                assert host.get("/training/status/x", headers=wrong).status_code == 401
                assert api.post("/api/v1/trainings/results", headers=wrong).status_code == 401
                assert api.get("/metrics", headers=wrong).status_code == 401
                assert host.get("/metrics", headers=wrong).status_code == 401
            assert api.get("/health").status_code == 200 and host.get("/health").status_code == 200
            assert api.get("/api/v1/operations", headers=good).status_code == 200
            assert api.get("/metrics", headers=good).status_code == 200
            # With the token, a host training goes through (start, callback and pull).
            response = api.post(
                "/api/v1/trainings/start",
                headers=good,
                json={
                    "strategy_name": "neuro_mean_reversion",
                    "symbols": ["EURUSD"],
                    "timeframes": ["1h"],
                    "start_date": "2017-01-01",
                    "end_date": "2017-03-31",
                    "execution_mode": "host",
                    "overrides": {"training.epochs": 2},
                },
            )
            operation_id = response.json()["operation_id"]

            def ended() -> dict | None:
                op = api.get(f"/api/v1/operations/{operation_id}", headers=good).json()
                return op if op["status"] in ("completed", "failed", "cancelled") else None

            assert wait_for(ended, 120)["status"] == "completed"
            # Completed on the backend may come before its answer reaches the host.
            wait_for(
                lambda: host.get(f"/training/status/{operation_id}", headers=good).json()[
                    "callback_delivered"
                ],
                60,
                what="the host hearing its callback answered",
            )


def test_a_host_that_does_not_answer_means_local_with_a_warning(
    local_api: Service, tmp_path: Path
) -> None:
    operation_id = start_training(local_api, execution_mode="host")
    op = wait_until_ended(local_api, operation_id)
    assert op["execution_mode"] == "local" and op["status"] == "completed"
    assert "does not answer" in op["warning"]
    refused = local_api.post(
        "/api/v1/trainings/start",
        json={
            "strategy_name": "neuro_mean_reversion",
            "symbols": ["EURUSD"],
            "timeframes": ["1h"],
            "start_date": "2017-01-01",
            "end_date": "2017-03-31",
            "execution_mode": "host",
            "require_gpu": True,
        },
    )
    assert refused.status_code == 409 and "require_gpu" in refused.json()["detail"]
