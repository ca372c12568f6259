"""Host mode: train through the training host service (DESIGN.md §12)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ktrdr import train_strategy
from ktrdr.errors import ExecutionModeError
from tests.conftest import STRATEGIES_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.host_service]

HOST_SERVICE_EXISTS = importlib.util.find_spec("ktrdr.host_service") is not None


@pytest.mark.skipif(not HOST_SERVICE_EXISTS, reason="the training host service is not built yet")
def test_training_through_the_host_service(e2e_env: dict[str, Path]) -> None:
    pytest.fail("the host service exists: start it in a fixture and train through it here")


@pytest.mark.skipif(HOST_SERVICE_EXISTS, reason="the host service exists")
def test_host_mode_without_a_host_service_says_so(e2e_env: dict[str, Path]) -> None:
    with pytest.raises(ExecutionModeError, match="host service"):
        train_strategy(
            ["EURUSD"],
            ["1h"],
            "2017-01-01",
            "2017-03-31",
            STRATEGIES_DIR / "neuro_mean_reversion.yaml",
            execution_mode="host",
        )
