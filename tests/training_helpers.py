"""The tests' way to train through the step functions directly (shared with the benchmarks)."""

from scripts.bench.direct_steps import StepRun, train_with_steps

__all__ = ["StepRun", "train_with_steps"]
