"""Step 7b: train a model on prepared arrays (docs/architecture.md: the twelve steps, training).

Batches are contiguous slices of the training tensors after one seeded permutation per epoch, all
on the training device (a per-item DataLoader costs ~10x more per batch for models this small).
The cancellation token is checked before every batch; the progress callback gets one "epoch"
report per epoch and "batch" reports about every 300 ms. Training holds TRAINING_LOCK: weight
initialisation and dropout draw from torch's process-wide generator.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ktrdr.async_infrastructure.cancellation import CancellationToken, check_cancelled
from ktrdr.errors import CancellationError, DataError, TrainingError
from ktrdr.training.device_detection import detect_training_device
from ktrdr.training.early_stopping import EarlyStopping
from ktrdr.training.evaluation import PREDICT_CHUNK
from ktrdr.training.optimizers import FUSED_DEVICE_TYPES, FusedAdam

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, dict[str, Any]], None]

# Re-entrant so that an orchestrator can hold it across seeding, model creation and training.
TRAINING_LOCK = threading.RLock()
BATCH_REPORT_SECONDS = 0.3


@dataclass(frozen=True)
class TrainingOutcome:
    """How training went: per-epoch ``history``, the restored ``best_epoch`` and why it ended."""

    history: list[dict[str, float]]
    best_epoch: int
    stopped_by: str  # "max_epochs" | "early_stopping"
    device: str
    stop_reason: str = ""
    class_weights: list[float] | None = field(default=None)


class ModelTrainer:
    """Trains a model in place with the strategy's ``training`` section; restores the best epoch."""

    def __init__(
        self,
        training_config: Mapping[str, Any],
        progress_callback: ProgressCallback | None = None,
        cancellation_token: CancellationToken | None = None,
        device: str | None = None,
    ) -> None:
        self.config = dict(training_config)
        self.progress_callback = progress_callback
        self.cancellation_token = cancellation_token
        self.device = device
        self._callback_failures = 0

    def train(
        self,
        model: nn.Module,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
    ) -> TrainingOutcome:
        """Train ``model`` on float32 features and int64 labels (0/1/2); no scaling happens here.

        Raises DataError for unusable arrays, TrainingError when the loss diverges, and
        CancellationError when the token is cancelled (checked before every batch).
        """
        _check_arrays(X_train, y_train, "training")
        _check_arrays(X_val, y_val, "validation")
        if X_train.shape[1] != X_val.shape[1]:
            raise DataError(
                f"training has {X_train.shape[1]} features, validation {X_val.shape[1]}"
            )
        device = torch.device(self.device or detect_training_device())
        with TRAINING_LOCK:
            return self._train(model, X_train, y_train, X_val, y_val, device)

    def _train(
        self,
        model: nn.Module,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        device: torch.device,
    ) -> TrainingOutcome:
        cfg = self.config
        epochs = int(cfg["epochs"])
        batch_size = int(cfg["batch_size"])
        model.to(device)
        x_train = torch.as_tensor(np.ascontiguousarray(X_train, dtype=np.float32), device=device)
        t_train = torch.as_tensor(np.ascontiguousarray(y_train, dtype=np.int64), device=device)
        x_val = torch.as_tensor(np.ascontiguousarray(X_val, dtype=np.float32), device=device)
        t_val = torch.as_tensor(np.ascontiguousarray(y_val, dtype=np.int64), device=device)
        weights = class_weights(cfg.get("class_weights"), y_train)
        criterion = nn.CrossEntropyLoss(
            weight=None if weights is None else torch.tensor(weights, device=device)
        )
        optimizer = make_optimizer(cfg, model)
        scheduler = make_scheduler(cfg, optimizer)
        stopping = cfg.get("early_stopping") or {}
        stopper = EarlyStopping(
            monitor=stopping.get("monitor", "val_loss"),
            patience=stopping.get("patience"),
            min_delta=float(stopping.get("min_delta", 0.0)),
        )
        # Shuffling draws from its own generator, so it is the same whatever else uses torch.
        generator = torch.Generator().manual_seed(int(cfg["seed"]))
        rows = len(t_train)
        total_batches = math.ceil(rows / batch_size)
        # Shuffled feature rows are gathered a block of whole batches at a time, not as a second
        # copy of the whole training matrix per epoch: the same rows in the same order.
        block_rows = batch_size * max(1, PREDICT_CHUNK // batch_size)
        history: list[dict[str, float]] = []
        stopped_by, stop_reason = "max_epochs", ""
        next_report = time.monotonic() + BATCH_REPORT_SECONDS
        token = self.cancellation_token
        for epoch in range(1, epochs + 1):
            check_cancelled(token, f"epoch {epoch}")
            model.train()
            order = torch.randperm(rows, generator=generator).to(device)
            t_epoch = t_train[order]
            x_block = x_train[:0]
            # Per batch, the loss tensor is kept and the predicted classes written in place;
            # both are summed once per epoch (every extra tiny tensor operation per batch costs
            # a visible share at batch 32).
            batch_losses: list[torch.Tensor] = []
            predicted = torch.empty(rows, dtype=torch.long, device=device)
            for batch in range(total_batches):
                if token is not None and token.is_cancelled():
                    check_cancelled(token, f"epoch {epoch}, batch {batch + 1}")
                start = batch * batch_size
                if start % block_rows == 0:
                    x_block = x_train[order[start : start + block_rows]]
                within = start % block_rows
                xb = x_block[within : within + batch_size]
                tb = t_epoch[start : start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                logits = model(xb)
                loss = criterion(logits, tb)
                loss.backward()
                optimizer.step()
                batch_losses.append(loss.detach())
                torch.argmax(logits.detach(), dim=1, out=predicted[start : start + len(tb)])
                if self.progress_callback is not None and time.monotonic() >= next_report:
                    seen = min(rows, start + len(tb))
                    self._report(
                        epoch,
                        epochs,
                        {
                            "progress_type": "batch",
                            "batch": batch + 1,
                            "total_batches": total_batches,
                            "train_loss": _mean_loss(torch.stack(batch_losses), batch_size, seen),
                            "train_accuracy": float(
                                (predicted[:seen] == t_epoch[:seen]).sum().item()
                            )
                            / seen,
                        },
                    )
                    next_report = time.monotonic() + BATCH_REPORT_SECONDS
            train_loss = _mean_loss(torch.stack(batch_losses), batch_size, rows)
            correct = (predicted == t_epoch).sum()
            if not math.isfinite(train_loss):
                raise TrainingError(
                    f"training loss became {train_loss} in epoch {epoch}; lower "
                    "training.learning_rate or check the features for extreme values"
                )
            val_loss, val_accuracy = evaluate_loss_accuracy(model, x_val, t_val, criterion)
            metrics = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_accuracy": float(correct.item()) / rows,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "learning_rate": float(optimizer.param_groups[0]["lr"]),
            }
            history.append(metrics)
            should_stop, reason = stopper.update(
                epoch, metrics[stopper.monitor], model.state_dict()
            )
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_loss)
            elif scheduler is not None:
                scheduler.step()
            self._report(epoch, epochs, {"progress_type": "epoch", **metrics})
            if should_stop:
                stopped_by, stop_reason = "early_stopping", reason
                logger.info("early stopping at epoch %d: %s", epoch, reason)
                break
        model.load_state_dict(stopper.best_weights())
        logger.info(
            "trained %d epoch(s) on %s; best epoch %d (%s %.4f)",
            len(history),
            device,
            stopper.best_epoch,
            stopper.monitor,
            stopper.best_value,
        )
        return TrainingOutcome(
            history=history,
            best_epoch=stopper.best_epoch,
            stopped_by=stopped_by,
            device=str(device),
            stop_reason=stop_reason,
            class_weights=weights,
        )

    def _report(self, epoch: int, total: int, metrics: dict[str, Any]) -> None:
        if self.progress_callback is None:
            return
        try:
            self.progress_callback(epoch, total, metrics)
        except CancellationError:
            raise
        except Exception:
            # A broken progress display must not kill a long training run.
            self._callback_failures += 1
            if self._callback_failures <= 3:
                logger.warning("progress callback failed (training continues)", exc_info=True)


def _mean_loss(batch_losses: torch.Tensor, batch_size: int, rows: int) -> float:
    """The per-row mean loss of an epoch from its batches' mean losses (the last may be short)."""
    sizes = torch.full_like(batch_losses, float(batch_size), dtype=torch.float64)
    sizes[-1] = rows - batch_size * (len(batch_losses) - 1)
    return float((batch_losses.double() * sizes).sum().item()) / rows


def _check_arrays(features: np.ndarray, labels: np.ndarray, name: str) -> None:
    if features.ndim != 2 or labels.ndim != 1:
        raise DataError(
            f"{name} features must be 2-D and labels 1-D, got shapes "
            f"{features.shape} and {labels.shape}"
        )
    if len(features) != len(labels):
        raise DataError(f"{name}: {len(features)} feature rows but {len(labels)} labels")
    if len(labels) == 0:
        raise DataError(f"{name}: no rows")
    if not np.isfinite(features).all():
        raise DataError(f"{name} features hold NaN or infinite values")
    if labels.min() < 0 or labels.max() > 2:
        raise DataError(f"{name} labels must be 0 (BUY), 1 (HOLD) or 2 (SELL)")


def class_weights(setting: Any, labels: np.ndarray) -> list[float] | None:
    """Loss weights per class: None, explicit [w_buy, w_hold, w_sell], or "balanced"
    (rows / (classes present x rows of the class); 0 for a class absent from training)."""
    if setting is None:
        return None
    if setting == "balanced":
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=3)
        present = int((counts > 0).sum())
        return [float(len(labels) / (present * c)) if c else 0.0 for c in counts]
    return [float(w) for w in setting]


def make_optimizer(cfg: Mapping[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    """The configured optimizer, on the device the model already lives on; SGD uses momentum 0.9.

    Adam and AdamW run torch's fused kernel through ``FusedAdam`` on CPU and CUDA: one kernel
    updates every parameter (1.6x faster per step at batch 32 on CPU, measured in ``make bench``)
    and the process never imports ``torch._dynamo``. SGD uses torch's fused kernel where the
    device has one. Fused runs are bit-identical to each other; their weights differ in the last
    bits from the unfused loop's.
    """
    lr, decay = float(cfg["learning_rate"]), float(cfg.get("weight_decay", 0.0))
    params = list(model.parameters())
    name = cfg.get("optimizer", "adam")
    device_types = {p.device.type for p in params}
    if name in ("adam", "adamw") and device_types <= FUSED_DEVICE_TYPES:
        return FusedAdam(params, lr=lr, weight_decay=decay, decoupled_weight_decay=name == "adamw")
    builders: dict[str, Any] = {
        "adam": lambda **kw: torch.optim.Adam(params, lr=lr, weight_decay=decay, **kw),
        "adamw": lambda **kw: torch.optim.AdamW(params, lr=lr, weight_decay=decay, **kw),
        "sgd": lambda **kw: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=decay, **kw),
    }
    if name in builders:
        try:
            optimizer: torch.optim.Optimizer = builders[name](fused=True)
            return optimizer
        except (RuntimeError, ValueError, TypeError):  # no fused kernel on this device
            return builders[name]()
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=decay)
    raise TrainingError(f"training.optimizer={name!r} is not supported")


def make_scheduler(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer) -> Any:
    """The configured learning-rate scheduler, stepped once per epoch, or None."""
    spec = cfg.get("lr_scheduler")
    if not spec:
        return None
    kind = spec["type"]
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=spec.get("factor", 0.5),
            patience=spec.get("patience", 5),
            min_lr=spec.get("min_lr", 0.0),
        )
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer,
            T_max=spec.get("t_max") or int(cfg["epochs"]),
            eta_min=spec.get("eta_min", 0.0),
        )
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=spec.get("step_size", 10), gamma=spec.get("gamma", 0.1)
        )
    raise TrainingError(f"training.lr_scheduler.type={kind!r} is not supported")


@torch.no_grad()
def evaluate_loss_accuracy(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, criterion: nn.Module
) -> tuple[float, float]:
    """Mean loss and accuracy in eval mode (no dropout), in chunks on the tensors' device."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(labels), PREDICT_CHUNK):
        xb, tb = features[start : start + PREDICT_CHUNK], labels[start : start + PREDICT_CHUNK]
        logits = model(xb)
        loss_sum += float(criterion(logits, tb).item()) * len(tb)
        correct += int((logits.argmax(dim=1) == tb).sum().item())
    model.train(was_training)
    return loss_sum / len(labels), correct / len(labels)
