"""What runs inside Ray: the control actor (cancel flag, progress) and the training task."""

from __future__ import annotations

import threading
from typing import Any

import ray

from ktrdr.training.run_spec import RunSpec

POLL_S = 0.2


@ray.remote(num_cpus=0)
class SweepControl:
    """One per sweep: the driver sets ``cancel``; tasks read it and post their progress."""

    def __init__(self) -> None:
        self._cancelled = False
        self._snapshots: dict[str, dict[str, Any]] = {}

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled

    def report(self, run_id: str, snapshot: dict[str, Any]) -> None:
        self._snapshots[run_id] = snapshot

    def snapshots(self) -> dict[str, dict[str, Any]]:
        return dict(self._snapshots)

    def snapshot(self, run_id: str) -> dict[str, Any] | None:
        return self._snapshots.get(run_id)


def train_on_ray(request: RunSpec, control: Any) -> tuple[Any, ...]:
    """One sweep run in a Ray worker: the same training as a local worker, cancelled through the
    library's token when the control actor says so."""
    from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
    from ktrdr.async_infrastructure.progress import GenericProgressManager
    from ktrdr.runs.worker import peak_rss_bytes, train_one

    token = ThreadingCancellationToken()
    manager = GenericProgressManager(operation_id=request.run_id)
    finished = threading.Event()

    def watch() -> None:
        last: dict[str, Any] | None = None
        while not finished.wait(POLL_S):
            if ray.get(control.cancelled.remote()):
                token.cancel("sweep cancelled")
            snapshot = manager.snapshot().to_dict()
            if snapshot != last:
                control.report.remote(request.run_id, snapshot)
                last = snapshot

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    outcome = train_one(request, token, manager)
    finished.set()
    watcher.join()
    ray.get(control.report.remote(request.run_id, manager.snapshot().to_dict()))
    peak = peak_rss_bytes()  # of the Ray worker process, which may have run earlier tasks
    if outcome[0] == "completed":
        return ("completed", outcome[1], outcome[2], None, None, peak)
    if outcome[0] == "cancelled":
        return ("cancelled", None, None, None, outcome[1], peak)
    return ("failed", None, None, outcome[1], outcome[2], peak)
