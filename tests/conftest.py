"""Fixtures shared by every test tier: an isolated environment and real bars in temporary stores."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from ktrdr.data.sample import write_sample_data
from ktrdr.data.store import load_bars

ISOLATED_VARIABLES = (
    "KTRDR_DATA_DIR",
    "KTRDR_MODELS_DIR",
    "KTRDR_STRATEGIES_DIR",
    "KTRDR_DEVICE",
    "USE_TRAINING_EXECUTOR",
    "TRAINING_EXECUTOR_ROLLOUT_PERCENT",
    "TRAINING_EXECUTOR_EXCLUDE",
    "KTRDR_LEDGER",
    "TRAINING_DEFAULT_MODE",
    "TRAINING_HOST_SERVICE_URL",
    "KTRDR_SERVICE_TOKEN",
    "KTRDR_TORCH_THREADS",
    "KTRDR_DATABASE_URL",
    "KTRDR_API_URL",
)
REPO_ROOT = Path(__file__).resolve().parent.parent
STRATEGIES_DIR = REPO_ROOT / "strategies"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the caller exported, tests start with none of ktrdr's variables set, except one
    torch thread (a test's time must not depend on the machine's load; tests of the thread
    choice unset it) and the runs ledger off."""
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KTRDR_TORCH_THREADS", "1")
    # No test writes a runs ledger into a folder it did not make; the ledger's own tests, and
    # those of each entry point's row, turn it on.
    monkeypatch.setenv("KTRDR_LEDGER", "off")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Code that calls torch directly (the step-by-step helper, ModelTrainer) runs on one thread."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def _sample_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample-store")
    write_sample_data(folder)
    return folder


@pytest.fixture
def sample_data_dir(_sample_store_template: Path, tmp_path: Path) -> Path:
    """A private copy of the store that ``ktrdr data sample`` writes (EURUSD 1h/4h/1d, GOOGL 1d)."""
    folder = tmp_path / "data"
    shutil.copytree(_sample_store_template, folder)
    return folder


@pytest.fixture(scope="session")
def eurusd_1h(_sample_store_template: Path) -> pd.DataFrame:
    """All EURUSD 1h sample bars (2017). Read-only by convention: copy before changing."""
    return load_bars("EURUSD", "1h", data_dir=_sample_store_template)


@pytest.fixture
def models_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "models"
    folder.mkdir()
    yield folder


def raised_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """Run ``call`` in a thread and return what it raised (None if nothing); the test fails
    if the call is still blocked after ``seconds``."""
    import threading

    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed back to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the call blocked"
    return raised[0] if raised else None
