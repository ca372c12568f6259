"""Early stopping as a small decision object: it says whether to stop; the trainer decides."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch

METRICS = ("val_loss", "val_accuracy")


class EarlyStopping:
    """Tracks the best value of ``monitor`` and a deep copy of the weights that gave it.

    ``update(value, state_dict)`` returns (should_stop, reason). ``patience=None`` never stops
    (it still keeps the best weights, so a full run also returns its best epoch).
    """

    def __init__(
        self, monitor: str = "val_loss", patience: int | None = None, min_delta: float = 0.0
    ) -> None:
        if monitor not in METRICS:
            raise ValueError(
                f"early_stopping.monitor: {monitor!r} is not a metric; use {' or '.join(METRICS)}"
            )
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.best_value = math.inf if monitor == "val_loss" else -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epochs_without_improvement = 0

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.monitor == "val_loss":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def update(
        self, epoch: int, value: float, state_dict: Mapping[str, torch.Tensor]
    ) -> tuple[bool, str]:
        """Record one finished epoch; returns (should_stop, reason)."""
        if self.improved(value) or self.best_state is None:
            self.best_value = value
            self.best_epoch = epoch
            self.best_state = {k: v.detach().clone() for k, v in state_dict.items()}
            self.epochs_without_improvement = 0
            return False, ""
        self.epochs_without_improvement += 1
        if self.patience is not None and self.epochs_without_improvement >= self.patience:
            return True, (
                f"{self.monitor} did not improve by more than {self.min_delta:g} for "
                f"{self.patience} epochs (best {self.best_value:.6g} at epoch "
                f"{self.best_epoch})"
            )
        return False, ""

    def best_weights(self) -> dict[str, torch.Tensor]:
        """A deep copy of the best weights seen so far."""
        if self.best_state is None:
            raise RuntimeError("no epoch recorded yet")
        return copy.deepcopy(self.best_state)
