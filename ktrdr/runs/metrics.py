"""Prometheus metrics of the trainings this process started (or, on the host, ran).

Fed by ``RunRecorder`` as each run starts and ends (one way, for every entry point) once a
service calls ``install``, served at
``GET /metrics`` by the backend API and the training host in the Prometheus text format through
``prometheus_client``. Names follow Prometheus's conventions: base units (seconds), ``_total``
only on the counter, no run ids as labels (``path`` is ``training_executor`` or
``strategy_trainer``, ``mode`` local/host/ray, ``status`` completed/failed/cancelled, ``step``
1-12). The alert rules over them live in ``deploy/prometheus/rules.yml``.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from ktrdr.runs.ledger import observe_runs
from ktrdr.training.run_spec import EXECUTION_PATHS

# A training takes seconds to hours; a step from milliseconds; a cancel should take well under
# 100 ms, and progress should arrive every few hundred.
_RUN_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
_FAST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10)

RUNS = Counter(
    "ktrdr_training_runs",
    "Trainings that ended, by path, mode and status",
    ["path", "mode", "status"],
)
DURATION = Histogram(
    "ktrdr_training_duration_seconds", "Seconds a training took", ["path"], buckets=_RUN_BUCKETS
)
STEP_DURATION = Histogram(
    "ktrdr_training_step_duration_seconds",
    "Seconds each of a training's twelve steps took",
    ["path", "step"],
    buckets=_STEP_BUCKETS,
)
CANCEL_LATENCY = Histogram(
    "ktrdr_training_cancel_latency_seconds",
    "Seconds from a request to cancel a training to its end",
    ["path"],
    buckets=_FAST_BUCKETS,
)
PROGRESS_INTERVAL = Histogram(
    "ktrdr_training_progress_interval_seconds",
    "Seconds between two progress reports of a training",
    ["path"],
    buckets=_FAST_BUCKETS,
)
ACTIVE = Gauge("ktrdr_trainings_active", "Trainings under way, by path", ["path"])
BUILD = Info("ktrdr_build", "The ktrdr build serving these metrics")

_UNKNOWN = "unknown"


def _version() -> str:
    try:
        return metadata.version("ktrdr")
    except metadata.PackageNotFoundError:
        return _UNKNOWN


BUILD.info({"version": _version(), "python": platform.python_version()})


class _Metrics:
    """The runs ledger's observer that keeps these metrics."""

    def run_started(self, path: str | None) -> None:
        ACTIVE.labels(path=path or _UNKNOWN).inc()

    def run_ended(
        self, row: Mapping[str, Any], started_path: str | None, intervals: Sequence[float]
    ) -> None:
        """Count a ledger row's run; ``started_path`` is the path its start was counted
        under in ``ktrdr_trainings_active``."""
        _count(row, started_path, intervals)


_METRICS = _Metrics()


def install() -> None:
    """Keep these metrics for every run followed in this process from now on (a service calls
    it once; calling it again changes nothing)."""
    observe_runs(_METRICS)
    # Every path's series exist from the start, at zero: a path that has had no cancelled run,
    # or only runs too short for a second progress report, still has its series.
    for path in EXECUTION_PATHS:
        for histogram in (DURATION, CANCEL_LATENCY, PROGRESS_INTERVAL):
            histogram.labels(path=path)
        ACTIVE.labels(path=path)


def _count(row: Mapping[str, Any], started_path: str | None, intervals: Iterable[float]) -> None:
    ACTIVE.labels(path=started_path or _UNKNOWN).dec()
    path = str(row.get("execution_path") or _UNKNOWN)
    RUNS.labels(
        path=path, mode=str(row.get("execution_mode") or _UNKNOWN), status=row["status"]
    ).inc()
    if row.get("duration_s") is not None:
        DURATION.labels(path=path).observe(float(row["duration_s"]))
    for step, seconds in (row.get("step_seconds") or {}).items():
        STEP_DURATION.labels(path=path, step=str(step)).observe(float(seconds))
    if row.get("cancel_latency_s") is not None:
        CANCEL_LATENCY.labels(path=path).observe(float(row["cancel_latency_s"]))
    for interval in intervals:
        PROGRESS_INTERVAL.labels(path=path).observe(interval)


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
