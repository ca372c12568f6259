"""What runs inside Ray: the control actor (cancel flags, progress) and the training task.

Imported only once Ray is (``RayBackend``): it needs ``ray`` at import time.
"""

from __future__ import annotations

from typing import Any

import ray

from ktrdr.runs.backend import RunOutcome
from ktrdr.training.run_spec import RunSpec


@ray.remote(num_cpus=0)
class RunControl:
    """One per backend: the driver sets a run's cancel flag; tasks read it and post progress."""

    def __init__(self) -> None:
        self._cancelled: set[str] = set()
        self._snapshots: dict[str, dict[str, Any]] = {}

    def cancel(self, run_id: str) -> None:
        self._cancelled.add(run_id)

    def cancelled(self, run_id: str) -> bool:
        return run_id in self._cancelled

    def report(self, run_id: str, snapshot: dict[str, Any]) -> None:
        self._snapshots[run_id] = snapshot

    def snapshots(self) -> dict[str, dict[str, Any]]:
        return dict(self._snapshots)


def train_on_ray(spec: RunSpec, control: Any) -> RunOutcome:
    """One run in a Ray worker: the same training as in a worker process, cancelled through the
    library's token when the control actor says so."""
    from dataclasses import replace

    from ktrdr.runs.worker import peak_rss_bytes, train_and_report

    def report(snapshot: dict[str, Any]) -> bool:
        ray.get(control.report.remote(spec.run_id, snapshot))
        return True

    def should_stop() -> str | None:
        return "cancelled by request" if ray.get(control.cancelled.remote(spec.run_id)) else None

    outcome = train_and_report(spec, report, should_stop)
    # Of the Ray worker process, which may have run earlier tasks.
    return replace(outcome, peak_rss_bytes=peak_rss_bytes())
