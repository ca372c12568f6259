"""Host mode: train the real strategy through the training host service (a real uvicorn process)
and keep the model here; it reloads and predicts what a local run of the same seed predicts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ktrdr import load_model, train_strategy
from ktrdr.data.store import load_bars
from ktrdr.errors import ExecutionModeError
from ktrdr.store.model_storage import ModelStorage
from tests.conftest import STRATEGIES_DIR
from tests.services import Service, free_port, running_service

pytestmark = [pytest.mark.e2e, pytest.mark.host_service]

STRATEGY = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
DATES = ("2017-01-01", "2017-06-30")


@pytest.fixture
def host(e2e_env: dict[str, Path], tmp_path: Path) -> Iterator[Service]:
    with running_service(
        "host", ["--data-dir", str(e2e_env["data_dir"])], tmp_path / "host.log"
    ) as service:
        yield service


def test_training_through_the_host_service(
    e2e_env: dict[str, Path], host: Service, tmp_path: Path
) -> None:
    remote = train_strategy(
        ["EURUSD"], ["1h"], *DATES, STRATEGY, execution_mode="host", host_url=host.url
    )
    assert remote["metadata"]["execution_mode"] == "host"
    assert Path(remote["model_path"]).parent.parent == e2e_env["models_dir"]
    local = train_strategy(
        ["EURUSD"], ["1h"], *DATES, STRATEGY, models_dir=tmp_path / "local-models"
    )
    assert remote["test_metrics"] == local["test_metrics"]
    assert remote["training_metrics"] == local["training_metrics"]
    assert remote["feature_importance"] == local["feature_importance"]

    bars = load_bars(
        "EURUSD", "1h", "2017-07-01", "2017-08-31", data_dir=e2e_env["data_dir"], history_bars=300
    )
    pd.testing.assert_frame_equal(
        load_model(remote["model_path"]).predict(bars, start="2017-07-01"),
        load_model(local["model_path"]).predict(bars, start="2017-07-01"),
    )
    assert [m.model_id for m in ModelStorage().list_models()] == [remote["model_id"]]


def test_host_mode_without_a_host_falls_back_or_refuses(e2e_env: dict[str, Path]) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.warns(RuntimeWarning, match="does not answer; training here instead"):
        result = train_strategy(
            ["EURUSD"],
            ["1h"],
            "2017-01-01",
            "2017-03-31",
            STRATEGY,
            execution_mode="host",
            host_url=nobody,
        )
    assert result["metadata"]["execution_path"] and "execution_mode" not in result["metadata"]
    with pytest.raises(ExecutionModeError, match="require_gpu"):
        train_strategy(
            ["EURUSD"],
            ["1h"],
            "2017-01-01",
            "2017-03-31",
            STRATEGY,
            execution_mode="host",
            host_url=nobody,
            require_gpu=True,
        )
