"""ModelTrainer samples/s against a bare PyTorch index-slicing loop (same model, data, batches)."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from ktrdr.config import load_strategy_config
from ktrdr.training.model_creation import create_model, seed_everything
from ktrdr.training.model_training import ModelTrainer
from scripts.bench.harness import BenchResult

STRATEGY = "strategies/neuro_mean_reversion.yaml"
ROWS, FEATURES, EPOCHS = 40_000, 18, 3
TARGET_RATIO = 0.9


def _data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    y = rng.integers(0, 3, ROWS).astype(np.int64)
    validation = ROWS // 10
    return x[validation:], y[validation:], x[:validation], y[:validation]


def _bare_loop(
    model: torch.nn.Module, x: np.ndarray, y: np.ndarray, config: dict, batch_size: int
) -> None:
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"]
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(targets), generator=generator)
        xs, ys = inputs[order], targets[order]
        for start in range(0, len(ys), batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xs[start : start + batch_size]), ys[start : start + batch_size])
            loss.backward()
            optimizer.step()


def run() -> list[BenchResult]:
    strategy = load_strategy_config(STRATEGY)
    x_train, y_train, x_val, y_val = _data()
    results = []
    for batch_size in (32, 256):
        config = copy.deepcopy(strategy["training"])
        config.update(epochs=EPOCHS, batch_size=batch_size, early_stopping=None)
        samples = len(y_train) * EPOCHS
        bare_times, trainer_times = [], []
        for _ in range(3):  # interleaved, best of three each: both see the same machine state
            seed_everything(1)
            model = create_model(FEATURES, strategy)
            start = time.perf_counter()
            _bare_loop(model, x_train, y_train, config, batch_size)
            bare_times.append(time.perf_counter() - start)
            seed_everything(1)
            model = create_model(FEATURES, strategy)
            trainer = ModelTrainer(config, progress_callback=lambda *_: None, device="cpu")
            start = time.perf_counter()
            trainer.train(model, x_train, y_train, x_val, y_val)
            trainer_times.append(time.perf_counter() - start)
        bare, ours = samples / min(bare_times), samples / min(trainer_times)
        results.append(
            BenchResult(
                name=f"ModelTrainer, batch {batch_size}",
                value=ours,
                unit="samples/s",
                baseline=bare,
                ratio=ours / bare,
                target=TARGET_RATIO,
                target_on="ratio",
                comparison=">=",
                note=f"bare loop: same model, {len(y_train)} rows x {EPOCHS} epochs, no validation",
            )
        )
    return results
