"""Torch's intra-op thread count, chosen per run and never left at torch's default.

On this project's small MLPs torch's default (one thread per core) gains nothing on a quiet
machine and collapses as soon as another process wants a core: its threads spin-wait at the end
of every small parallel operation. Measured on the 2-core reference machine (``make bench``,
``docs/performance.md``), batch 256 × a 512-wide MLP took 0.18 s per epoch with one thread and
5.9 s with two while a second process was busy; only when a batch holds about 1e8 multiply-adds
(batch size × weights) do two threads win with or without a competitor.

Precedence: an explicit ``threads`` argument (``--threads``), then ``KTRDR_TORCH_THREADS``, then
``choose_threads``. ``torch_threads`` sets the count for a block and restores the caller's on exit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from ktrdr import settings
from ktrdr.neural.mlp import mlp_weights

# Multiply-adds per batch (batch rows × model weights) from which a second thread pays even with
# a competing process; below it, one thread is never slower and cannot collapse.
PARALLEL_WORK = 100_000_000
MAX_THREADS = 8


def choose_threads(batch_rows: int, weights: int, cores: int | None = None) -> int:
    """The thread count for batches of ``batch_rows`` through a model of ``weights`` weights."""
    available = max(1, cores or os.cpu_count() or 1)
    work = batch_rows * weights
    if work < PARALLEL_WORK:
        return 1
    return max(1, min(available, MAX_THREADS, work // PARALLEL_WORK + 1))


def threads_for_training(
    strategy_config: Mapping[str, Any], input_dim: int, explicit: int | None = None
) -> int:
    """The thread count of a training run of ``strategy_config`` with ``input_dim`` features."""
    requested = settings.torch_threads(explicit)
    if requested is not None:
        return requested
    weights = mlp_weights(input_dim, strategy_config["model"]["architecture"]["hidden_layers"])
    return choose_threads(int(strategy_config["training"]["batch_size"]), weights)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """Run the block with ``count`` intra-op threads; the caller's setting comes back after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(previous)
