"""Where a sweep's runs execute: local worker processes (``ktrdr/runs``) or Ray tasks.

Both take the same requests and give back the same outcomes; both cancel through the library's
token inside each run (never by killing a run that can still stop itself), and neither starts a
run once the sweep is cancelled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ktrdr.async_infrastructure.cancellation import CancellationToken
from ktrdr.runs import RunOutcome, RunPool
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

# run id, status, latest progress snapshot (or None)
Listener = Callable[[str, str, dict[str, Any] | None], None]
CANCEL_GRACE_S = 10.0


def run_local(
    requests: Sequence[RunSpec],
    max_parallel: int,
    token: CancellationToken | None,
    listener: Listener,
) -> dict[str, RunOutcome]:
    """Every request in a worker process, at most ``max_parallel`` at once."""
    pool = RunPool(max_parallel, warm=False)
    outcomes: dict[str, RunOutcome] = {}
    done = threading.Event()
    lock = threading.Lock()

    def progress(handle: Any, snapshot: dict[str, Any]) -> None:
        listener(handle.run_id, "running", snapshot)

    def finished(handle: Any) -> None:
        outcome = handle.outcome()
        with lock:
            outcomes[handle.run_id] = outcome
            if len(outcomes) == len(requests):
                done.set()
        listener(handle.run_id, outcome.status, handle.snapshot())

    handles = [pool.start_run(r, on_progress=progress, on_finish=finished) for r in requests]
    cancelled = False
    while not done.wait(0.1):
        if not cancelled and token is not None and token.is_cancelled():
            cancelled = True
            for handle in reversed(handles):  # pending ones first: they must never start
                handle.cancel(CANCEL_GRACE_S)
    pool.shutdown(grace_s=0)
    return outcomes


def start_ray(address: str) -> bool:
    """Connect to Ray at ``address`` unless this process already is; True when it connected
    here (and so should ``ray.shutdown()`` when done). A ``local`` Ray binds 127.0.0.1.

    Call it from the main thread where signals matter: connecting installs Ray's own handlers,
    which the caller then replaces with its own. Raises ExecutionModeError without Ray.
    """
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the installation
        from ktrdr.errors import ExecutionModeError

        raise ExecutionModeError("--ray-address needs Ray: pip install 'ktrdr[ray]'") from exc
    if ray.is_initialized():
        return False
    if address == "local":
        # A Ray started here listens on loopback only, never on the machine's other addresses.
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return True


def run_ray(
    requests: Sequence[RunSpec],
    max_parallel: int,
    token: CancellationToken | None,
    listener: Listener,
    address: str,
) -> dict[str, RunOutcome]:
    """Every request as a Ray task (``address``: ``local``, ``auto`` or ``ray://host:port``)."""
    import ray

    from ktrdr.sweep.ray_tasks import SweepControl, train_on_ray

    started_here = start_ray(address)
    try:
        control = SweepControl.remote()  # type: ignore[attr-defined]
        task = ray.remote(num_cpus=1, max_retries=0)(train_on_ray)
        queue = list(requests)
        running: dict[Any, str] = {}
        outcomes: dict[str, RunOutcome] = {}
        cancelled = False
        while queue or running:
            if not cancelled and token is not None and token.is_cancelled():
                cancelled = True
                ray.get(control.cancel.remote())
                for request in queue:  # never started
                    outcomes[request.run_id] = RunOutcome("cancelled", error="sweep cancelled")
                    listener(request.run_id, "cancelled", None)
                queue = []
            while queue and len(running) < max_parallel and not cancelled:
                request = queue.pop(0)
                running[task.remote(request, control)] = request.run_id
                listener(request.run_id, "running", None)
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            for snapshot_id, snapshot in ray.get(control.snapshots.remote()).items():
                if snapshot_id in running.values():
                    listener(snapshot_id, "running", snapshot)
            for reference in ready:
                run_id = running.pop(reference)
                try:
                    outcomes[run_id] = RunOutcome(*ray.get(reference))
                except Exception as exc:  # a task that died (worker crash, node lost)
                    outcomes[run_id] = RunOutcome(
                        "failed", error_type="TrainingError", error=f"the Ray task failed: {exc}"
                    )
                status = outcomes[run_id].status
                listener(run_id, status, ray.get(control.snapshot.remote(run_id)))
        return outcomes
    finally:
        if started_here:
            ray.shutdown()
