"""Cancelling during training, and the progress a run reports.

See docs/architecture.md: training, progress and cancellation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr import train_strategy
from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.errors import CancellationError
from ktrdr.training import model_training
from tests.conftest import STRATEGIES_DIR

pytestmark = [pytest.mark.e2e]

REAL = STRATEGIES_DIR / "neuro_mean_reversion.yaml"


@pytest.mark.parametrize("flag", ["true", "false"])
def test_cancel_during_training_saves_nothing(
    e2e_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    monkeypatch.setattr(model_training, "BATCH_REPORT_SECONDS", 0.0)
    token = ThreadingCancellationToken()
    manager = GenericProgressManager()
    seen: list[tuple[int, int]] = []

    def callback(epoch: int, total: int, metrics: dict[str, Any]) -> None:
        if metrics["progress_type"] == "batch":
            seen.append((epoch, metrics["batch"]))
            if epoch == 2 and metrics["batch"] == 3:
                token.cancel("user pressed stop")

    with pytest.raises(CancellationError, match="user pressed stop"):
        train_strategy(
            ["EURUSD"],
            ["1h"],
            "2017-01-01",
            "2017-03-31",
            REAL,
            progress_callback=callback,
            cancellation_token=token,
            progress_manager=manager,
        )
    assert seen[-1] == (2, 3)  # no batch after the one that cancelled
    assert manager.snapshot().status == "cancelled"
    assert list(e2e_env["models_dir"].rglob("*")) == []  # nothing written at all


@pytest.mark.parametrize("flag", ["true", "false"])
def test_progress_steps_epochs_and_percentages(
    e2e_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    manager = GenericProgressManager()
    percentages: list[float] = []
    epochs: list[int] = []

    def callback(epoch: int, total: int, metrics: dict[str, Any]) -> None:
        percentages.append(manager.snapshot().percentage)
        if metrics["progress_type"] == "epoch":
            epochs.append(epoch)

    result = train_strategy(
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-03-31",
        REAL,
        progress_callback=callback,
        progress_manager=manager,
    )
    ran = result["training_metrics"]["epochs"]
    assert manager.started_steps == list(range(1, 13))
    assert epochs == list(range(1, ran + 1))
    final = manager.snapshot()
    assert final.status == "completed" and final.percentage == 100.0
    percentages.append(final.percentage)
    assert percentages == sorted(percentages)  # never backwards
    assert 20.0 <= percentages[0] <= 90.0  # training reports land in step 7's band
