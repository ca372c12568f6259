"""The rollout at run time through the backend: its settings changed and checked over HTTP,
kept across a restart, a percentage of 0 taking every new run back to the reference path
without a restart, and a sampled run's shadow on the other path recorded in the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ktrdr.runs.ledger import RunLedger
from tests.services import (
    Service,
    api_args,
    free_port,
    operation,
    running_service,
    start_training,
    wait_for,
    wait_until_ended,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = "/api/v1/trainings/config"


def _args(tmp_path: Path, data_dir: Path) -> list[str]:
    args = api_args(tmp_path, f"http://127.0.0.1:{free_port()}")
    args[args.index("--data-dir") + 1] = str(data_dir)
    return args


def _path_of(api: Service, operation_id: str) -> str:
    ended = wait_until_ended(api, operation_id, timeout=180)
    assert ended["status"] == "completed", ended
    return str(ended["result"]["metadata"]["execution_path"])


def test_the_rollout_changes_without_a_restart_and_keeps_across_one(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    env = {"KTRDR_LEDGER": "on", "TRAINING_EXECUTOR_ROLLOUT_PERCENT": "100"}
    args = _args(tmp_path, sample_data_dir)
    with running_service("api", args, tmp_path / "api.log", env=env) as api:
        now = api.get(CONFIG).json()
        assert now == {
            "default_execution_mode": "local",
            "rollout_percent": 100,
            "shadow_percent": 0,
            "executor_exclude": [],
            "use_training_executor": None,
        }
        assert _path_of(api, start_training(api)) == "training_executor"
        # The rollback: every run started from now on trains on the reference path.
        changed = api.put(CONFIG, json={"rollout_percent": 0, "shadow_percent": 100})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["rollout_percent"], changed.json()["shadow_percent"]) == (0, 100)
        primary = start_training(api)
        assert _path_of(api, primary) == "strategy_trainer"

        def shadow() -> dict[str, Any] | None:
            ledger = RunLedger(f"sqlite:///{sample_data_dir / 'ktrdr.db'}")
            try:
                found = [r for r in ledger.rows() if r["shadow_of"] == primary]
            finally:
                ledger.close()
            return found[0] if found else None

        row = wait_for(shadow, 180, what="the shadow's ledger row")
        assert (row["execution_path"], row["status"], row["shadow"]) == (
            "training_executor",
            "completed",
            "match",
        ), row
        assert (
            row["weights_digest"] == operation(api, primary)["result"]["metadata"]["weights_digest"]
        )
        assert api.get(CONFIG).json()["rollout_percent"] == 0
    kept = json.loads((sample_data_dir / "rollout.json").read_text())
    assert kept == {"rollout_percent": 0, "shadow_percent": 100, "executor_exclude": []}
    # A backend started again on the same data keeps the rollback over its environment's 100.
    with running_service("api", args, tmp_path / "api.log", env=env) as api:
        assert api.get(CONFIG).json()["rollout_percent"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"rollout_percent": 101},
        {"rollout_percent": -1},
        {"rollout_percent": "10"},
        {"rollout_percent": 10.5},
        {"rollout_percent": True},
        {"rollout_percent": None},
        {"shadow_percent": 1000},
        {"executor_exclude": ["../etc"]},
        {"executor_exclude": "neuro_mean_reversion"},
        {"executor_exclude": ["x" * 101]},
        {"rollout_percent": 10, "surprise": 1},
    ],
)
def test_bad_rollout_settings_are_refused_and_change_nothing(
    api_without_host: Service, body: dict[str, Any]
) -> None:
    before = api_without_host.get(CONFIG).json()
    refused = api_without_host.put(CONFIG, json=body)
    assert refused.status_code == 422, refused.text
    assert api_without_host.get(CONFIG).json() == before


@pytest.fixture(scope="module")
def api_without_host(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("rollout-api")
    args = api_args(folder, f"http://127.0.0.1:{free_port()}")
    with running_service("api", args, folder / "api.log") as api:
        yield api


def test_a_damaged_rollout_file_stops_the_backend_naming_it(tmp_path: Path) -> None:
    args = api_args(tmp_path, f"http://127.0.0.1:{free_port()}")
    data = Path(args[args.index("--data-dir") + 1])
    data.mkdir(parents=True)
    (data / "rollout.json").write_text('{"rollout_percent": 250}')
    with pytest.raises(RuntimeError) as failed, running_service("api", args, tmp_path / "api.log"):
        pass
    assert "rollout.json" in str(failed.value) and "rollout_percent" in str(failed.value)
