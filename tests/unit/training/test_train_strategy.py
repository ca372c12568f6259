"""StrategyTrainer: the flag and rollout, and behaviour both execution paths must share."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ktrdr import train_strategy
from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.config import load_strategy_config
from ktrdr.errors import (
    CancellationError,
    ModelStorageError,
    TrainingError,
)
from ktrdr.training import executor as executor_module
from ktrdr.training import train_strategy as train_strategy_module
from ktrdr.training.feature_importance import PermutationImportance
from ktrdr.training.train_strategy import StrategyTrainer
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 1})


class RecordingManager(GenericProgressManager):
    def __init__(self) -> None:
        super().__init__()
        self.symbol_updates: list[tuple[int, str, int, int]] = []

    def update_step_progress(
        self, step_current: float, step_total: float, message: str = "", context: Any = None
    ) -> None:
        if context and "symbol" in context:
            self.symbol_updates.append(
                (self.snapshot().step_number, context["symbol"], context["index"], context["count"])
            )
        super().update_step_progress(step_current, step_total, message, context)


@pytest.mark.parametrize("flag", ["true", "false"])
def test_both_paths_report_symbol_progress_inside_steps_2_to_5(
    flag: str, sample_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    manager = RecordingManager()
    daily = load_strategy_config(
        STRATEGIES_DIR / "bollinger_reversion_daily.yaml", {"training.epochs": 1}
    )
    train_strategy(
        ["EURUSD", "GOOGL"],
        ["1d"],
        "2017-01-01",
        "2017-12-31",
        daily,
        data_dir=sample_data_dir,
        progress_manager=manager,
        save=False,
    )
    expected = [
        (step, symbol, index, 2)
        for step in (2, 3, 4, 5)
        for index, symbol in enumerate(["EURUSD", "GOOGL"], start=1)
    ]
    assert manager.symbol_updates == expected


@pytest.mark.parametrize("flag", ["true", "false"])
def test_a_cancel_that_lands_during_the_save_does_not_orphan_the_model(
    flag: str, sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ktrdr.store.model_storage import ModelStorage

    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    token = ThreadingCancellationToken()
    original = ModelStorage.save_model

    def save_then_cancel(self: ModelStorage, artifact: Any) -> Any:
        saved = original(self, artifact)
        token.cancel("too late")  # arrives while step 10 is finishing
        return saved

    monkeypatch.setattr(ModelStorage, "save_model", save_then_cancel)
    result = train_strategy(
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-03-31",
        REAL,
        data_dir=sample_data_dir,
        models_dir=models_dir,
        cancellation_token=token,
    )
    # The model is on disk, so the run reports success rather than a cancel that left it there.
    assert result["success"] and Path(result["model_path"]).is_dir()


def _nan_importance(
    model: Any, x: Any, y: Any, names: list[str], *args: Any, **kwargs: Any
) -> PermutationImportance:
    return PermutationImportance(dict.fromkeys(names, float("nan")), dict.fromkeys(names, 0.0))


@pytest.mark.parametrize("flag", ["true", "false"])
def test_a_run_that_fails_validation_leaves_no_model(
    flag: str, sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A non-finite number in the result fails step 11's contract; it used to be checked after
    # the save, so the run exited 1 with its version on disk and latest pointing at it.
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    monkeypatch.setattr(executor_module, "calculate_feature_importance", _nan_importance)
    monkeypatch.setattr(train_strategy_module, "calculate_feature_importance", _nan_importance)
    trainer = StrategyTrainer(models_dir, sample_data_dir)
    with pytest.raises(TrainingError, match="non-finite number at feature_importance"):
        trainer.train_multi_symbol_strategy(REAL, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31")
    assert not list(models_dir.rglob("manifest.json"))
    assert not (models_dir / "neuro_mean_reversion" / "latest").exists()


def _make_read_only(folder: Path) -> None:
    # Permission bits do not bind root (CI runs as root); the immutable attribute does.
    folder.chmod(0o555)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=False, capture_output=True)
    probe = folder / "probe"
    try:
        probe.touch()
    except OSError:
        return
    probe.unlink()
    pytest.skip("cannot make a read-only folder on this machine")


@pytest.mark.parametrize("flag", ["true", "false"])
@pytest.mark.parametrize("problem", ["file", "read-only", "latest-folder", "long-name"])
def test_what_would_fail_at_the_save_fails_before_step_1(
    flag: str, problem: str, sample_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    models = tmp_path / "models"
    symbols = ["EURUSD"]
    if problem == "file":
        models.write_text("not a folder")
        expected = "is a file, not a folder"
    elif problem == "read-only":
        models.mkdir()
        _make_read_only(models)
        expected = f"cannot write to the model store folder {models}"
    elif problem == "latest-folder":
        (models / "neuro_mean_reversion" / "latest").mkdir(parents=True)
        expected = "latest is a real folder"
    else:
        symbols = [f"S{i:03d}.LONGNAME" for i in range(20)]
        expected = "file name limit"
    manager = GenericProgressManager()
    try:
        with pytest.raises(ModelStorageError, match=expected):
            StrategyTrainer(models, sample_data_dir).train_multi_symbol_strategy(
                REAL, symbols, ["1h"], "2017-01-01", "2017-03-31", progress_manager=manager
            )
    finally:
        if problem == "read-only":
            if os.geteuid() == 0:
                subprocess.run(["chattr", "-i", str(models)], check=False, capture_output=True)
            models.chmod(0o755)
    assert manager.snapshot().step_number == 0  # not even the bars were loaded


class CancelAt(GenericProgressManager):
    """Cancels the token when a given step starts, or when a step reports a given symbol."""

    def __init__(
        self, token: ThreadingCancellationToken, step: int, symbol_index: int | None = None
    ) -> None:
        super().__init__()
        self.token = token
        self.step = step
        self.symbol_index = symbol_index

    def start_step(self, number: int, name: str | None = None) -> None:
        super().start_step(number, name)
        if number == self.step and self.symbol_index is None:
            self.token.cancel("test cancel")

    def update_step_progress(
        self, step_current: float, step_total: float, message: str = "", context: Any = None
    ) -> None:
        super().update_step_progress(step_current, step_total, message, context)
        index = (context or {}).get("index")
        at_step = self.snapshot().step_number == self.step
        if self.symbol_index is not None and at_step and index == self.symbol_index:
            self.token.cancel("test cancel")


@pytest.mark.parametrize("flag", ["true", "false"])
@pytest.mark.parametrize("cancel_when_step_starts", range(1, 10))
def test_a_cancel_is_seen_before_the_next_step_on_both_paths(
    flag: str,
    cancel_when_step_starts: int,
    sample_data_dir: Path,
    models_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The token is cancelled as step k starts (k = 7 is seen by the trainer before a batch);
    # the run must stop no later than the check before step k + 1, and save nothing.
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    token = ThreadingCancellationToken()
    manager = CancelAt(token, cancel_when_step_starts)
    with pytest.raises(CancellationError, match="test cancel during") as caught:
        StrategyTrainer(models_dir, sample_data_dir).train_multi_symbol_strategy(
            REAL,
            ["EURUSD"],
            ["1h"],
            "2017-01-01",
            "2017-03-31",
            cancellation_token=token,
            progress_manager=manager,
        )
    k = cancel_when_step_starts
    if 2 <= k <= 5:  # the per-symbol check inside the step sees it before the first symbol
        assert f"during step {k} (EURUSD)" in str(caught.value)
    elif k == 7:  # the trainer sees it before the first batch
        assert "during epoch 1" in str(caught.value)
    elif k == 9:  # feature importance checks before each feature
        assert "during step 9 (feature importance)" in str(caught.value)
    else:
        assert f"during step {k + 1}" in str(caught.value)
    assert manager.started_steps == list(range(1, cancel_when_step_starts + 1))
    assert manager.snapshot().status == "cancelled"
    assert not list(models_dir.rglob("manifest.json"))


@pytest.mark.parametrize("flag", ["true", "false"])
@pytest.mark.parametrize("step", [2, 3, 4, 5])
def test_a_cancel_is_seen_between_symbols_on_both_paths(
    flag: str, step: int, sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    token = ThreadingCancellationToken()
    manager = CancelAt(token, step, symbol_index=1)
    with pytest.raises(CancellationError, match=rf"test cancel during step {step} \(GOOGL\)"):
        StrategyTrainer(models_dir, sample_data_dir).train_multi_symbol_strategy(
            REAL,
            ["EURUSD", "GOOGL"],
            ["1d"],
            "2016-01-01",
            "2017-12-31",
            cancellation_token=token,
            progress_manager=manager,
        )
    assert manager.started_steps[-1] == step
    assert not list(models_dir.rglob("manifest.json"))


@pytest.mark.parametrize("flag", ["true", "false"])
def test_rows_left_out_for_stale_higher_context_are_in_the_result_s_warnings(
    flag: str, sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 4h bars that stop a week before the 1h bars: the rows of that week were left out with a
    # log line only, and the result's metadata.warnings said nothing of them.
    from ktrdr.data.store import delete_bars

    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    delete_bars("EURUSD", "4h", "2017-03-24", data_dir=sample_data_dir)
    mtf = load_strategy_config(STRATEGIES_DIR / "trend_momentum_mtf.yaml", {"training.epochs": 1})
    result = StrategyTrainer(models_dir, sample_data_dir).train_multi_symbol_strategy(
        mtf, ["EURUSD"], ["1h", "4h"], "2017-01-01", "2017-03-31", save=False
    )
    stale = [w for w in result["metadata"]["warnings"] if "context older than one 4h bar" in w]
    assert len(stale) == 1, result["metadata"]["warnings"]
    assert stale[0].startswith("EURUSD: ") and stale[0].endswith("those rows are left out")
    assert "from 2017-03-24" in stale[0]
