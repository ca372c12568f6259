"""TrainingExecutor: cancellation before step 1, one failure funnel, save=False, argument checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.config import load_strategy_config
from ktrdr.errors import (
    CancellationError,
    DataError,
    StrategyConfigError,
    TrainingError,
)
from ktrdr.training import executor as executor_module
from ktrdr.training.executor import TrainingExecutor
from ktrdr.training.run_spec import build_run_spec
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 1})


def test_cancelled_before_the_first_step(sample_data_dir: Path, models_dir: Path) -> None:
    token = ThreadingCancellationToken()
    token.cancel("stop now")
    manager = GenericProgressManager()
    executor = TrainingExecutor(
        {"strategy_config": REAL, "data_dir": sample_data_dir},
        cancellation_token=token,
        progress_manager=manager,
    )
    with pytest.raises(CancellationError, match="stop now during step 1"):
        executor.execute(["EURUSD"], ["1h"], "2017-01-01", "2017-03-31")
    assert manager.snapshot().status == "cancelled" and manager.started_steps == []


def test_failures_go_through_one_funnel(
    sample_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = GenericProgressManager()
    executor = TrainingExecutor(
        {"strategy_config": REAL, "data_dir": sample_data_dir}, progress_manager=manager
    )
    with pytest.raises(DataError, match=r"USDJPY_1h\.csv does not exist"):
        executor.execute(["USDJPY"], ["1h"], "2017-01-01", "2017-03-31")
    assert manager.snapshot().status == "failed"

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(executor_module, "calculate_feature_importance", broken)
    manager = GenericProgressManager()
    executor = TrainingExecutor(
        {"strategy_config": REAL, "data_dir": sample_data_dir}, progress_manager=manager
    )
    with pytest.raises(TrainingError, match=r"step 9/12 \(Calculating feature importance\)"):
        executor.execute(["EURUSD"], ["1h"], "2017-01-01", "2017-03-31")
    assert "disk on fire" in (manager.snapshot().error or "")


def test_save_false_writes_nothing_and_keeps_the_artifact(
    sample_data_dir: Path, models_dir: Path
) -> None:
    executor = TrainingExecutor(
        {"strategy_config": REAL, "data_dir": sample_data_dir}, model_storage=None
    )
    spec = build_run_spec(
        REAL, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", save=False, data_dir=sample_data_dir
    )
    run = executor.run(spec)
    result = run.result
    assert result["model_path"] is None and result["model_id"] is None and run.saved is None
    assert run.artifact.manifest["feature_names"] == result["feature_names"]
    assert list(models_dir.iterdir()) == []


def test_data_mode_and_unknown_arguments(sample_data_dir: Path) -> None:
    executor = TrainingExecutor({"strategy_config": REAL, "data_dir": sample_data_dir})
    with pytest.raises(DataError, match="data_mode='remote'"):
        executor.execute(["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", data_mode="remote")
    with pytest.raises(TrainingError, match="unknown execute\\(\\) argument"):
        executor.execute(["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", epochs=3)


def test_validation_split_contradicting_the_strategy(sample_data_dir: Path) -> None:
    executor = TrainingExecutor({"strategy_config": REAL, "data_dir": sample_data_dir})
    with pytest.raises(StrategyConfigError, match=r"contradicts training\.data_split"):
        executor.execute(["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", validation_split=0.2)
