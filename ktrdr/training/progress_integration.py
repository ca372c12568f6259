"""Report ModelTrainer's epochs and batches inside step 7 of a progress manager (DESIGN.md §10)."""

from __future__ import annotations

from typing import Any

from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.training.model_training import ProgressCallback


class TrainingProgressIntegrator:
    """Makes a callback with exactly ModelTrainer's signature that feeds a progress manager."""

    def __init__(self, progress_manager: GenericProgressManager, step_number: int = 7) -> None:
        self.progress_manager = progress_manager
        self.step_number = step_number

    def create_callback(self) -> ProgressCallback:
        manager = self.progress_manager

        def callback(epoch: int, total_epochs: int, metrics: dict[str, Any]) -> None:
            context: dict[str, Any] = {
                "epoch": epoch,
                "total_epochs": total_epochs,
                "metrics": dict(metrics),
            }
            if metrics.get("progress_type") == "batch":
                batch, batches = int(metrics["batch"]), int(metrics["total_batches"])
                context.update(batch=batch, total_batches=batches)
                done = epoch - 1 + batch / batches
                message = f"Epoch {epoch}/{total_epochs} · Batch {batch}/{batches}"
            else:
                done = epoch
                message = f"Epoch {epoch}/{total_epochs}"
            manager.update_step_progress(done, total_epochs, message=message, context=context)

        return callback
