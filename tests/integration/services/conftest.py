"""Both services as real uvicorn processes on free loopback ports, always stopped afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import STRATEGIES_DIR
from tests.services import Service, running_service, wait_for

Q1 = {"start_date": "2017-01-01", "end_date": "2017-03-31"}
# Long enough to be stopped mid-training: no early stop, hundreds of epochs over the year.
LONG = {
    "start_date": "2017-01-01",
    "end_date": "2017-12-31",
    "overrides": {"training.epochs": 2000, "training.early_stopping.patience": 2000},
}


@pytest.fixture
def host(sample_data_dir: Path, tmp_path: Path) -> Iterator[Service]:
    with running_service(
        "host", ["--data-dir", str(sample_data_dir)], tmp_path / "host.log"
    ) as service:
        yield service


def api_args(tmp_path: Path, host_url: str, *extra: str) -> list[str]:
    return [
        "--models-dir",
        str(tmp_path / "models"),
        "--data-dir",
        str(tmp_path / "api-data"),
        "--strategies-dir",
        str(STRATEGIES_DIR),
        "--host-url",
        host_url,
        *extra,
    ]


@pytest.fixture
def api(host: Service, tmp_path: Path) -> Iterator[Service]:
    with running_service("api", api_args(tmp_path, host.url), tmp_path / "api.log") as service:
        yield service


def start_training(api: Service, **body: Any) -> str:
    request = {
        "strategy_name": "neuro_mean_reversion",
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        **Q1,
        "overrides": {"training.epochs": 3},
        **body,
    }
    response = api.post("/api/v1/trainings/start", json=request)
    assert response.status_code == 200, response.text
    return str(response.json()["operation_id"])


def operation(api: Service, operation_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/operations/{operation_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_until_ended(api: Service, operation_id: str, timeout: float = 120) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        op = operation(api, operation_id)
        return op if op["status"] in ("completed", "failed", "cancelled") else None

    return dict(wait_for(ended, timeout, what=f"operation {operation_id} ending"))


def wait_until_training(api: Service, operation_id: str, timeout: float = 60) -> None:
    def training() -> bool:
        progress = operation(api, operation_id).get("progress") or {}
        return progress.get("step_number") == 7 and bool(progress.get("context", {}).get("epoch"))

    wait_for(training, timeout, what=f"operation {operation_id} in step 7")
    time.sleep(0.5)
