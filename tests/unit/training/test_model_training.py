from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import pytest
import torch

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.config import load_strategy_config
from ktrdr.errors import CancellationError, DataError
from ktrdr.training import model_training
from ktrdr.training.model_creation import create_model, seed_everything
from ktrdr.training.model_training import ModelTrainer, class_weights, make_optimizer
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")


def data(rows: int = 600, features: int = 8, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    score = x[:, 0] - x[:, 1]
    y = np.where(score > 0.5, 0, np.where(score < -0.5, 2, 1)).astype(np.int64)
    split = int(rows * 0.75)
    return x[:split], y[:split], x[split:], y[split:]


def config(**training: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(REAL)
    cfg["training"].update({"epochs": 6, "batch_size": 32, "early_stopping": None}, **training)
    return load_strategy_config(cfg)


def train(cfg: dict[str, Any], **kw: Any) -> tuple[torch.nn.Module, Any]:
    x_train, y_train, x_val, y_val = data()
    seed_everything(cfg["training"]["seed"])
    model = create_model(x_train.shape[1], cfg)
    outcome = ModelTrainer(cfg["training"], device="cpu", **kw).train(
        model, x_train, y_train, x_val, y_val
    )
    return model, outcome


def tensor_bytes(model: torch.nn.Module) -> list[bytes]:
    return [v.numpy().tobytes() for _, v in sorted(model.state_dict().items())]


def test_same_seed_bit_identical_weights_and_metrics() -> None:
    first, outcome_1 = train(config())
    second, outcome_2 = train(config())
    assert tensor_bytes(first) == tensor_bytes(second)
    assert outcome_1.history == outcome_2.history
    third, _ = train(config(seed=7))
    assert tensor_bytes(first) != tensor_bytes(third)


def test_it_learns_and_reports_history() -> None:
    _, outcome = train(config(epochs=15, learning_rate=0.01))
    assert len(outcome.history) == 15 and outcome.stopped_by == "max_epochs"
    assert [h["epoch"] for h in outcome.history] == list(range(1, 16))
    assert outcome.history[-1]["val_accuracy"] > 0.8
    assert outcome.device == "cpu"


def test_best_epoch_weights_are_restored_not_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    snapshots: dict[int, list[bytes]] = {}
    original = model_training.EarlyStopping.update

    def recording(self: Any, epoch: int, value: float, state: Any) -> tuple[bool, str]:
        snapshots[epoch] = [v.numpy().tobytes() for _, v in sorted(state.items())]
        return original(self, epoch, value, state)

    monkeypatch.setattr(model_training.EarlyStopping, "update", recording)
    # A learning rate this high makes validation loss jump around: the best is not the last.
    model, outcome = train(
        config(
            epochs=12,
            learning_rate=0.5,
            optimizer="sgd",
            early_stopping={"patience": 4, "monitor": "val_loss"},
        )
    )
    losses = [h["val_loss"] for h in outcome.history]
    assert outcome.best_epoch == int(np.argmin(losses)) + 1
    assert outcome.best_epoch != len(outcome.history)
    assert tensor_bytes(model) == snapshots[outcome.best_epoch]
    if outcome.stopped_by == "early_stopping":
        assert len(outcome.history) - outcome.best_epoch == 4


def test_cancel_from_callback_at_batch_k_stops_before_batch_k_plus_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_training, "BATCH_REPORT_SECONDS", 0.0)  # report every batch
    token = ThreadingCancellationToken()
    forwards = []
    cancel_at = 5

    def callback(epoch: int, total: int, metrics: dict[str, Any]) -> None:
        if metrics["progress_type"] == "batch" and metrics["batch"] == cancel_at:
            token.cancel("test")

    cfg = config()
    x_train, y_train, x_val, y_val = data()
    seed_everything(1)
    model = create_model(x_train.shape[1], cfg)
    model.register_forward_hook(lambda *_: forwards.append(1))
    trainer = ModelTrainer(
        cfg["training"], progress_callback=callback, cancellation_token=token, device="cpu"
    )
    with pytest.raises(CancellationError, match="test during epoch 1, batch 6"):
        trainer.train(model, x_train, y_train, x_val, y_val)
    assert len(forwards) == cancel_at  # batch k+1 never ran its forward pass


def test_callback_contract_and_failures_do_not_stop_training(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(model_training, "BATCH_REPORT_SECONDS", 0.0)
    calls: list[tuple[int, int, dict[str, Any]]] = []

    def flaky(epoch: int, total: int, metrics: dict[str, Any]) -> None:
        calls.append((epoch, total, metrics))
        raise RuntimeError("display broke")

    with caplog.at_level(logging.WARNING):
        _, outcome = train(config(epochs=3), progress_callback=flaky)
    assert len(outcome.history) == 3
    epochs = [c for c in calls if c[2]["progress_type"] == "epoch"]
    assert [(e, t) for e, t, _ in epochs] == [(1, 3), (2, 3), (3, 3)]
    assert set(epochs[0][2]) >= {
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
    }
    batch = next(c[2] for c in calls if c[2]["progress_type"] == "batch")
    assert set(batch) >= {"batch", "total_batches", "train_loss", "train_accuracy"}
    assert batch["total_batches"] == 15  # 450 rows / 32
    assert "progress callback failed" in caplog.text


def test_a_cancellation_error_raised_by_the_callback_cancels() -> None:
    def stop(epoch: int, total: int, metrics: dict[str, Any]) -> None:
        if metrics["progress_type"] == "epoch" and epoch == 2:
            raise CancellationError("stopped from the display")

    with pytest.raises(CancellationError, match="stopped from the display"):
        train(config(epochs=5), progress_callback=stop)


def test_batch_reports_are_throttled() -> None:
    calls: list[str] = []
    train(config(epochs=2), progress_callback=lambda e, t, m: calls.append(m["progress_type"]))
    assert calls.count("epoch") == 2
    assert calls.count("batch") <= 2  # 30 fast batches in well under 300 ms each report


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
@pytest.mark.parametrize(
    "scheduler",
    [
        None,
        {"type": "plateau", "patience": 0},
        {"type": "cosine"},
        {"type": "step", "step_size": 1},
    ],
)
def test_optimizers_and_schedulers(optimizer: str, scheduler: dict[str, Any] | None) -> None:
    _, outcome = train(config(epochs=3, optimizer=optimizer, lr_scheduler=scheduler))
    rates = [h["learning_rate"] for h in outcome.history]
    assert rates[0] == pytest.approx(0.001)
    if scheduler and scheduler["type"] == "step":
        assert rates[1] == pytest.approx(0.0001)


def test_class_weights() -> None:
    labels = np.array([0, 1, 1, 1, 2, 2])
    assert class_weights(None, labels) is None
    assert class_weights("balanced", labels) == pytest.approx([2.0, 2 / 3, 1.0])
    assert class_weights("balanced", np.array([1, 1, 2])) == pytest.approx([0.0, 0.75, 1.5])
    _, outcome = train(config(class_weights="balanced", epochs=2))
    assert outcome.class_weights is not None


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("nan", "training features hold NaN or infinite values"),
        ("labels", r"training labels must be 0 \(BUY\), 1 \(HOLD\) or 2 \(SELL\)"),
        ("shape", r"training: \d+ feature rows but \d+ labels"),
        ("empty", "validation: no rows"),
    ],
)
def test_bad_arrays_are_data_errors(problem: str, message: str) -> None:
    x_train, y_train, x_val, y_val = data()
    if problem == "nan":
        x_train = x_train.copy()
        x_train[3, 2] = np.nan
    elif problem == "labels":
        y_train = y_train + 3
    elif problem == "shape":
        y_train = y_train[:-1]
    else:
        x_val, y_val = x_val[:0], y_val[:0]
    seed_everything(1)
    model = create_model(x_train.shape[1], config())
    with pytest.raises(DataError, match=message):
        ModelTrainer(config()["training"], device="cpu").train(
            model, x_train, y_train, x_val, y_val
        )


@pytest.mark.parametrize(
    ("name", "fused"), [("adam", True), ("adamw", True), ("sgd", True), ("rmsprop", None)]
)
def test_optimizers_use_the_fused_kernel_where_torch_has_one(name: str, fused: bool | None) -> None:
    optimizer = make_optimizer(
        {"learning_rate": 1e-3, "weight_decay": 1e-4, "optimizer": name}, torch.nn.Linear(4, 3)
    )
    assert optimizer.defaults.get("fused") is fused


def test_shuffled_rows_gathered_in_blocks_train_the_same_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole, _ = train(config(batch_size=32))
    # Blocks of 2 batches: 14 blocks per epoch, the last one partial.
    monkeypatch.setattr(model_training, "PREDICT_CHUNK", 64)
    blocked, _ = train(config(batch_size=32))
    assert tensor_bytes(blocked) == tensor_bytes(whole)
