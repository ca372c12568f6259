"""What every benchmark returns, and how it is timed."""

from __future__ import annotations

import statistics
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
    # min and max of the repeats behind ``value`` and ``baseline`` (same unit), when measured
    value_range: tuple[float, float] | None = None
    baseline_range: tuple[float, float] | None = None

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


@dataclass(frozen=True)
class Timings:
    """Seconds per repeat of a baseline and a subject measured in alternation."""

    baseline: list[float]
    subject: list[float]

    @staticmethod
    def _median(values: list[float]) -> float:
        return float(statistics.median(values))

    @property
    def baseline_median(self) -> float:
        return self._median(self.baseline)

    @property
    def subject_median(self) -> float:
        return self._median(self.subject)

    @property
    def ratio(self) -> float:
        """Subject time over baseline time, of the medians (above 1: the subject is slower)."""
        return self.subject_median / self.baseline_median

    def spread(self) -> float:
        """The larger relative half-range of the two sets: how far one repeat strays."""
        return max((max(v) - min(v)) / 2 / self._median(v) for v in (self.baseline, self.subject))


def interleaved(
    baseline: Callable[[], object],
    subject: Callable[[], object],
    repeats: int = 5,
    warmup: int = 1,
) -> Timings:
    """Time ``baseline`` and ``subject`` in alternation, ``repeats`` times each after ``warmup``
    untimed rounds, so both see the same machine state (load, caches, frequency)."""
    for _ in range(warmup):
        baseline()
        subject()
    base: list[float] = []
    ours: list[float] = []
    for _ in range(repeats):
        for function, times in ((baseline, base), (subject, ours)):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    return Timings(base, ours)
