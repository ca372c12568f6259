from __future__ import annotations

import pytest
import torch

from ktrdr.errors import TrainingError
from ktrdr.training.device_detection import detect_training_device

pytestmark = pytest.mark.unit


def _machine(monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, count: int = 1) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if cuda else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"), [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_prefers_cuda_then_mps_then_cpu(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, expected: str
) -> None:
    _machine(monkeypatch, cuda, mps)
    assert detect_training_device() == expected


def test_environment_and_argument_override(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, True, False, count=2)
    monkeypatch.setenv("KTRDR_DEVICE", "cpu")
    assert detect_training_device() == "cpu"
    assert detect_training_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("cuda", "CUDA is not available"),
        ("mps", "MPS is not available"),
        ("tpu", "is not a device"),
    ],
)
def test_unavailable_device_is_an_error(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    _machine(monkeypatch, False, False)
    monkeypatch.setenv("KTRDR_DEVICE", value)
    with pytest.raises(TrainingError, match=f"KTRDR_DEVICE.*{message}"):
        detect_training_device()


def test_cuda_index_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, True, False, count=1)
    with pytest.raises(TrainingError, match="1 CUDA device"):
        detect_training_device("cuda:3")
