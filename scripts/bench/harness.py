"""What every benchmark returns, and how it is timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class BenchResult:
    """One measured figure; ``pass`` compares ``target`` with ``value`` or with ``ratio``."""

    name: str
    value: float
    unit: str
    baseline: float
    ratio: float
    target: float
    target_on: Literal["value", "ratio"]
    comparison: Literal[">=", "<="]
    note: str = ""

    @property
    def passed(self) -> bool:
        measured = self.value if self.target_on == "value" else self.ratio
        return measured >= self.target if self.comparison == ">=" else measured <= self.target

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pass"] = self.passed
        return data


def best_time(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeats`` timed calls after ``warmup`` untimed ones, in seconds.

    The minimum is the least noisy estimate of what the code costs: other load only adds time.
    """
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)
