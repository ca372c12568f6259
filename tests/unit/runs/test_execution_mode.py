from __future__ import annotations

from typing import Any

import pytest

from ktrdr.errors import ExecutionModeError
from ktrdr.runs import execution_mode
from ktrdr.runs.execution_mode import ExecutionModeSelector

pytestmark = pytest.mark.unit


def selector(
    monkeypatch: pytest.MonkeyPatch, health: dict[str, Any] | None, local_gpu: bool = False
) -> ExecutionModeSelector:
    chosen = ExecutionModeSelector("local", "http://127.0.0.1:1")
    monkeypatch.setattr(chosen, "host_health", lambda: health)
    monkeypatch.setattr(execution_mode, "_local_gpu", lambda: local_gpu)
    return chosen


@pytest.mark.parametrize(
    ("requested", "require_gpu", "health", "local_gpu", "expected"),
    [
        ("local", False, None, False, "local"),
        ("host", False, {"gpu": False}, False, "host"),
        ("host", False, None, False, "local"),  # with a warning
        ("host", True, {"gpu": True}, False, "host"),
        ("auto", False, {"gpu": True}, False, "local"),
        ("auto", True, {"gpu": True}, False, "host"),
        ("auto", True, None, True, "local"),
        ("auto", True, {"gpu": False}, True, "local"),
        (None, False, {"gpu": True}, False, "local"),  # the default mode
    ],
)
def test_the_mode_each_request_gets(
    monkeypatch: pytest.MonkeyPatch,
    requested: str | None,
    require_gpu: bool,
    health: dict[str, Any] | None,
    local_gpu: bool,
    expected: str,
) -> None:
    choice = selector(monkeypatch, health, local_gpu).select(requested, require_gpu)
    assert choice.mode == expected
    assert (choice.warning is not None) == (requested == "host" and health is None)


@pytest.mark.parametrize(
    ("requested", "health", "message"),
    [
        ("host", None, "does not answer"),
        ("host", {"gpu": False}, "has no GPU"),
        ("auto", None, "neither the training host"),
        ("local", {"gpu": True}, "this machine has no GPU"),
    ],
)
def test_require_gpu_fails_clearly_without_one(
    monkeypatch: pytest.MonkeyPatch, requested: str, health: dict | None, message: str
) -> None:
    with pytest.raises(ExecutionModeError, match=message):
        selector(monkeypatch, health).select(requested, require_gpu=True)


def test_the_default_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINING_DEFAULT_MODE", "auto")
    assert ExecutionModeSelector().default_mode == "auto"
    with pytest.raises(ExecutionModeError, match="'gpu' is not valid"):
        ExecutionModeSelector("gpu")
