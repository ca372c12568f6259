"""Measure the rule behind ``ktrdr.training.threads.choose_threads``.

``python scripts/bench/thread_rule.py`` trains a 3-layer MLP (18 inputs) for one epoch over batch
sizes and widths with 1..nproc threads, on a quiet machine and beside a process that keeps one
core busy, and prints seconds per epoch with each setting's work per batch (batch x weights).
Not part of ``make bench`` (it takes a few minutes); docs/performance.md quotes its output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import torch
from torch import nn

FEATURES = 18


def epoch_seconds(threads: int, batch: int, width: int, rows: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(FEATURES, width),
        nn.ReLU(),
        nn.Linear(width, width // 2),
        nn.ReLU(),
        nn.Linear(width // 2, 3),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x, y = torch.randn(rows, FEATURES), torch.randint(0, 3, (rows,))
    loss_fn = nn.CrossEntropyLoss()

    def epoch() -> None:
        for start in range(0, rows, batch):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[start : start + batch]), y[start : start + batch]).backward()
            optimizer.step()

    epoch()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        epoch()
        best = min(best, time.perf_counter() - started)
    return best


def grid(label: str) -> None:
    cores = os.cpu_count() or 1
    print(f"\n{label}: seconds per epoch (threads 1..{cores})")
    print("batch  width  work/batch   " + "  ".join(f"{t:>7d}" for t in range(1, cores + 1)))
    for batch in (32, 256, 2048):
        for width in (50, 512, 2048):
            rows = 20_000 if width < 2048 else 6_000
            weights = sum(
                p.numel()
                for p in nn.Sequential(
                    nn.Linear(FEATURES, width),
                    nn.Linear(width, width // 2),
                    nn.Linear(width // 2, 3),
                ).parameters()
            )
            times = [epoch_seconds(t, batch, width, rows) for t in range(1, cores + 1)]
            cells = "  ".join(f"{t:7.3f}" for t in times)
            print(f"{batch:5d}  {width:5d}  {batch * weights:10.2e}   {cells}")


def main() -> None:
    grid("quiet")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        grid("one core busy")
    finally:
        busy.kill()


if __name__ == "__main__":
    main()
