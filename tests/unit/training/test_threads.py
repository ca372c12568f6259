from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ktrdr.config import load_strategy_config
from ktrdr.errors import StrategyConfigError
from ktrdr.neural.mlp import mlp_weights
from ktrdr.store.model_artifact import state_dict_digest
from ktrdr.training.run_spec import build_run_spec
from ktrdr.training.threads import (
    PARALLEL_WORK,
    choose_threads,
    threads_for_training,
    torch_threads,
)
from ktrdr.training.train_strategy import StrategyTrainer
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 2})


def test_small_models_get_one_thread_and_big_batches_more() -> None:
    # The shipped strategy: batch 32 through a few thousand weights.
    weights = mlp_weights(18, REAL["model"]["architecture"]["hidden_layers"])
    assert choose_threads(32, weights, cores=2) == 1
    # Batch 256 through a 512-wide MLP collapsed with two threads beside a busy process.
    assert choose_threads(256, mlp_weights(18, [512, 256]), cores=2) == 1
    # On two cores one thread always: beside a busy process even a 4e9-multiply-add batch was
    # slower on two threads.
    assert choose_threads(2048, mlp_weights(18, [2048, 1024]), cores=2) == 1
    # With more cores, big batches get up to half of them.
    assert choose_threads(2048, mlp_weights(18, [2048, 1024]), cores=4) == 2
    assert choose_threads(PARALLEL_WORK, 1, cores=64) == 2
    assert choose_threads(PARALLEL_WORK - 1, 1, cores=64) == 1
    assert choose_threads(10**12, 1, cores=64) == 8


def test_precedence_argument_then_environment_then_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KTRDR_TORCH_THREADS")
    assert threads_for_training(REAL, 18) == 1
    monkeypatch.setenv("KTRDR_TORCH_THREADS", "3")
    assert threads_for_training(REAL, 18) == 3
    assert threads_for_training(REAL, 18, explicit=2) == 2
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv("KTRDR_TORCH_THREADS", bad)
        with pytest.raises(StrategyConfigError, match="KTRDR_TORCH_THREADS"):
            threads_for_training(REAL, 18)
    with pytest.raises(StrategyConfigError, match="threads=0"):
        threads_for_training(REAL, 18, explicit=0)


def test_the_callers_setting_comes_back(
    sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KTRDR_TORCH_THREADS")
    with torch_threads(2):
        seen: list[int] = []

        def record(epoch: int, total: int, metrics: dict) -> None:
            seen.append(torch.get_num_threads())

        result = StrategyTrainer(models_dir, sample_data_dir).train_multi_symbol_strategy(
            REAL, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", progress_callback=record
        )
        assert torch.get_num_threads() == 2
    assert seen and set(seen) == {1}  # the rule's choice for this small model, during training
    assert result["metadata"]["torch_threads"] == 1


@pytest.mark.parametrize("flag", ["true", "false"])
def test_weights_are_bit_identical_across_thread_counts(
    flag: str, sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    # Wide enough that torch really splits the work between two threads.
    config = load_strategy_config(
        STRATEGIES_DIR / "neuro_mean_reversion.yaml",
        {
            "training.epochs": 2,
            "training.batch_size": 512,
            "model.architecture.hidden_layers": [512, 256],
        },
    )
    digests = {}
    for threads in (1, 2):
        spec = build_run_spec(
            config,
            ["EURUSD"],
            ["1h"],
            "2017-01-01",
            "2017-03-31",
            save=False,
            threads=threads,
            data_dir=sample_data_dir,
            models_dir=models_dir,
        )
        run = StrategyTrainer().train(spec)
        result = run.result
        assert result["metadata"]["torch_threads"] == threads
        digests[threads] = (
            state_dict_digest(run.artifact.state_dict),
            result["test_metrics"],
            result["training_metrics"],
        )
    assert digests[1] == digests[2]
