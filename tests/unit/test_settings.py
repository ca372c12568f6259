from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr import settings
from ktrdr.errors import StrategyConfigError

pytestmark = pytest.mark.unit


def test_argument_beats_environment_beats_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert settings.models_dir() == Path("models")
    monkeypatch.setenv("KTRDR_MODELS_DIR", str(tmp_path / "env"))
    assert settings.models_dir() == tmp_path / "env"  # read at call time, not import
    assert settings.models_dir(tmp_path / "arg") == tmp_path / "arg"
    assert settings.data_dir() == Path("data")
    assert settings.strategies_dir() == Path("strategies")


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("FALSE", False), (" True ", True), ("", None)]
)
def test_executor_flag(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool | None) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", value)
    assert settings.use_training_executor() is expected


@pytest.mark.parametrize("value", ["yes", "1", "on"])
def test_other_flag_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", value)
    with pytest.raises(StrategyConfigError, match="USE_TRAINING_EXECUTOR"):
        settings.use_training_executor()


def test_rollout_percent(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.rollout_percent() == 0
    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", "25")
    assert settings.rollout_percent() == 25
    for bad in ("101", "-1", "ten"):
        monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", bad)
        with pytest.raises(StrategyConfigError, match="TRAINING_EXECUTOR_ROLLOUT_PERCENT"):
            settings.rollout_percent()


def test_services(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.host_service_url() == "http://127.0.0.1:5002"
    monkeypatch.setenv("TRAINING_HOST_SERVICE_URL", "http://gpu-box:5002/")
    assert settings.host_service_url() == "http://gpu-box:5002"
    assert settings.default_execution_mode() == "local"
    monkeypatch.setenv("TRAINING_DEFAULT_MODE", "cloud")
    with pytest.raises(StrategyConfigError, match="TRAINING_DEFAULT_MODE"):
        settings.default_execution_mode()
    assert settings.service_token() is None
    monkeypatch.setenv("KTRDR_SERVICE_TOKEN", "s3cret")
    assert settings.service_token() == "s3cret"
