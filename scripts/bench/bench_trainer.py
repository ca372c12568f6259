"""ModelTrainer samples/s against the fastest honest bare PyTorch loop for the same work.

The bare loop uses the same model, data and batches, the fastest fused Adam step there is
(``FusedAdam``: torch's fused kernel without torch.optim's step bookkeeping), computes the same
per-epoch history (training and validation loss and accuracy), and runs at whichever of 1 and 2
threads is faster for that shape (measured first); ModelTrainer runs at the thread count ktrdr
chooses. Median of 5 runs in alternation; absolute
samples/s reported.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from ktrdr.config import load_strategy_config
from ktrdr.neural.mlp import mlp_weights
from ktrdr.training.model_creation import create_model, seed_everything
from ktrdr.training.model_training import ModelTrainer
from ktrdr.training.optimizers import FusedAdam
from ktrdr.training.threads import choose_threads, torch_threads
from scripts.bench.harness import BenchResult, interleaved

STRATEGY = "strategies/neuro_mean_reversion.yaml"
ROWS, FEATURES = 40_000, 18
# Epochs per batch size, so that each run lasts about a second: long enough that per-run setup
# does not decide the ratio.
EPOCHS = {32: 3, 256: 12}
TARGET_RATIO = 0.9


def _data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    y = rng.integers(0, 3, ROWS).astype(np.int64)
    validation = ROWS // 10
    return x[validation:], y[validation:], x[:validation], y[:validation]


def _bare_loop(
    model: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: dict,
    batch_size: int,
) -> None:
    """The least that does ModelTrainer's work: shuffled batches, fused Adam, and each epoch's
    history (training loss and accuracy from the batches, validation loss and accuracy), the
    figures its contract reports and early stopping reads."""
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    val_inputs, val_targets = torch.from_numpy(x_val), torch.from_numpy(y_val)
    optimizer = FusedAdam(
        list(model.parameters()), lr=config["learning_rate"], weight_decay=config["weight_decay"]
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(int(config["epochs"])):
        order = torch.randperm(len(targets), generator=generator)
        xs, ys = inputs[order], targets[order]
        losses, predicted = [], torch.empty(len(ys), dtype=torch.long)
        for start in range(0, len(ys), batch_size):
            optimizer.zero_grad(set_to_none=True)
            logits = model(xs[start : start + batch_size])
            loss = loss_fn(logits, ys[start : start + batch_size])
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            torch.argmax(logits.detach(), dim=1, out=predicted[start : start + batch_size])
        float(torch.stack(losses).sum()), int((predicted == ys).sum())
        with torch.no_grad():
            model.eval()
            val_logits = model(val_inputs)
            (
                float(loss_fn(val_logits, val_targets)),
                int((val_logits.argmax(1) == val_targets).sum()),
            )
            model.train()


def run() -> list[BenchResult]:
    strategy = load_strategy_config(STRATEGY)
    x_train, y_train, x_val, y_val = _data()
    results = []
    weights = mlp_weights(FEATURES, strategy["model"]["architecture"]["hidden_layers"])
    for batch_size in (32, 256):
        config = copy.deepcopy(strategy["training"])
        epochs = EPOCHS[batch_size]
        config.update(epochs=epochs, batch_size=batch_size, early_stopping=None)
        samples = len(y_train) * epochs

        def bare(threads: int, size: int = batch_size, cfg: dict = config) -> Callable[[], None]:
            def loop() -> None:
                with torch_threads(threads):
                    seed_everything(1)
                    _bare_loop(
                        create_model(FEATURES, strategy), x_train, y_train, x_val, y_val, cfg, size
                    )

            return loop

        def ours(cfg: dict = config, size: int = batch_size) -> None:
            with torch_threads(choose_threads(size, weights)):
                seed_everything(1)
                model = create_model(FEATURES, strategy)
                trainer = ModelTrainer(cfg, progress_callback=lambda *_: None, device="cpu")
                trainer.train(model, x_train, y_train, x_val, y_val)

        by_threads = interleaved(bare(1), bare(2), repeats=2)
        best = 1 if by_threads.baseline_median <= by_threads.subject_median else 2
        timings = interleaved(bare(best), ours)
        results.append(
            BenchResult(
                name=f"ModelTrainer, batch {batch_size}",
                value=samples / timings.subject_median,
                unit="samples/s",
                baseline=samples / timings.baseline_median,
                ratio=timings.baseline_median / timings.subject_median,
                target=TARGET_RATIO,
                target_on="ratio",
                comparison=">=",
                note=f"bare loop: fused Adam, {best} thread(s) (the faster), {len(y_train)} rows x "
                f"{epochs} epochs, each epoch's losses and accuracies; "
                f"spread ±{timings.spread():.1%}",
                value_range=(samples / max(timings.subject), samples / min(timings.subject)),
                baseline_range=(samples / max(timings.baseline), samples / min(timings.baseline)),
            )
        )
    return results
