"""Report ModelTrainer's epochs and batches inside step 7 of a progress manager.

See docs/architecture.md: progress and cancellation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ktrdr.async_infrastructure.cancellation import CancellationToken, check_cancelled
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.training.model_training import ProgressCallback


def symbol_progress(
    manager: GenericProgressManager,
    symbols: Sequence[str],
    token: CancellationToken | None,
    where: str,
) -> Iterator[str]:
    """Yield each symbol, reporting "symbol i/n" in the current step and checking cancellation
    before each one (multi-symbol work inside a step; see docs/architecture.md: progress and
    cancellation)."""
    for index, symbol in enumerate(symbols, start=1):
        check_cancelled(token, f"{where} ({symbol})")
        manager.update_step_progress(
            index - 1,
            len(symbols),
            message=f"{symbol} ({index}/{len(symbols)})",
            context={"symbol": symbol, "index": index, "count": len(symbols)},
        )
        yield symbol
    manager.update_step_progress(len(symbols), len(symbols))


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
