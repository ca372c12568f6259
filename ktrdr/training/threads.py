"""Torch's intra-op thread count, chosen per run and never left at torch's default.

On this project's small MLPs torch's default (one thread per core) gains little on a quiet
machine and collapses as soon as another process wants a core: its threads spin-wait at the end
of every small parallel operation. Measured on the 2-core reference machine with
``python scripts/bench/thread_rule.py`` (one epoch, fused Adam, docs/performance.md): batch 256
through a 512-wide MLP took 0.15 s on one thread and 0.11 s on two when quiet, but 0.16 s against
2.3 s with one core busy; even batch 2048 through a 2048-wide MLP (4e9 multiply-adds per batch)
was slower on two threads beside a busy process (0.59 s against 0.48 s).

So on two cores ktrdr always uses one thread: never more than 2x slower than the best setting on
a quiet machine (and only for models far larger than any shipped strategy), never collapsing on a
busy one. With more cores, a batch of at least ``PARALLEL_WORK`` multiply-adds gets up to half of
them, leaving the rest to other processes; that branch follows the same measurements but was not
measured on such a machine.

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

# Multiply-adds per batch (batch rows × model weights) below which one thread is as fast as two
# even on a quiet machine (scripts/bench/thread_rule.py).
PARALLEL_WORK = 100_000_000
MAX_THREADS = 8


def choose_threads(batch_rows: int, weights: int, cores: int | None = None) -> int:
    """The thread count for batches of ``batch_rows`` through a model of ``weights`` weights."""
    available = max(1, cores or os.cpu_count() or 1)
    work = batch_rows * weights
    if available <= 2 or work < PARALLEL_WORK:
        return 1
    return max(1, min(available // 2, MAX_THREADS, work // PARALLEL_WORK + 1))


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
