"""Figures for docs/performance.md, "Start-up": what a cold training process used to import, and
the optimizer step that replaced torch.optim's.

``python scripts/bench/startup_figures.py`` prints one JSON document:

- the time and resident memory each import adds in a fresh process that already has torch and
  numpy (``torch._dynamo``, which ``torch.optim`` imports; ``scipy.stats`` against
  ``scipy.special``, for the verdict's binomial test), median of 5 processes;
- seconds per 4,000 optimizer steps at batch 32 on the 18-50-25-3 MLP, one thread, for
  ``torch.optim.Adam(fused=True)`` and ``FusedAdam`` (same kernel), 5 interleaved rounds.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

_IMPORT = """
import json, resource, sys, time
import numpy, torch
before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
__import__(sys.argv[1])
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
}))
"""
MODULES = ("torch._dynamo", "scipy.stats", "scipy.special")
STEPS = 4_000


def import_cost(module: str, processes: int = 5) -> dict[str, float]:
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _IMPORT, module], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(processes)
    ]
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in ("seconds", "mib")}


def optimizer_steps(rounds: int = 5) -> dict[str, float]:
    import torch
    from torch import nn

    from ktrdr.training.optimizers import FusedAdam

    torch.set_num_threads(1)

    def steps(build: type) -> float:
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(18, 50), nn.ReLU(), nn.Linear(50, 25), nn.ReLU(), nn.Linear(25, 3)
        )
        optimizer = build(list(model.parameters()))
        x, y = torch.randn(32, 18), torch.randint(0, 3, (32,))
        started = time.perf_counter()
        for _ in range(STEPS):
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        return time.perf_counter() - started

    builders = {
        "torch.optim.Adam(fused=True)": lambda p: torch.optim.Adam(p, lr=1e-3, fused=True),
        "FusedAdam": lambda p: FusedAdam(p, lr=1e-3),
    }
    times: dict[str, list[float]] = {name: [] for name in builders}
    for _ in range(rounds):
        for name, build in builders.items():
            times[name].append(steps(build))
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def main() -> None:
    figures = {
        "imports": {module: import_cost(module) for module in MODULES},
        f"seconds per {STEPS} steps, batch 32": optimizer_steps(),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
