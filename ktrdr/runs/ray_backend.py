"""``RayBackend``: runs as Ray tasks, at most ``max_running`` at once.

One driver thread per backend submits queued runs as slots free up, waits on the running tasks
and carries their progress (posted to a control actor) to the handles. A run is cancelled
through its token inside the task; after the grace period its task is cancelled by Ray.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from ktrdr.errors import ExecutionModeError
from ktrdr.runs.backend import (
    DEFAULT_GRACE_S,
    FinishListener,
    HandleState,
    ProgressListener,
    RunOutcome,
)
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

WAIT_S = 0.2


# Ray replaces a node address of 127.0.0.1 by the machine's own (so that other nodes could
# join) unless it believes clusters are off; with them off, every Ray process listens on
# loopback only. Read by Ray at import time and by the processes it starts.
_RAY_CLUSTERS = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Ray's own handler turns a SIGTERM into an abort 3 s later, before a sweep could stop cleanly.
_RAY_FAILURE_HANDLER = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"


def start_ray(address: str, num_cpus: int | None = None) -> bool:
    """Connect to Ray at ``address`` unless this process already is; True when it connected
    here (and so should ``ray.shutdown()`` when done).

    ``local`` starts one node with ``num_cpus`` CPUs (default: all); ``auto`` joins a Ray
    already running on this machine. Either way every Ray process here, this one included,
    listens on 127.0.0.1 only. ``ray://host:port`` connects as a Ray Client, which starts
    nothing and listens on nothing. Call it from the main thread where signals matter:
    connecting installs Ray's own handlers, which the caller then replaces with its own.
    Raises ExecutionModeError without Ray.
    """
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ExecutionModeError("--ray-address needs Ray: pip install 'ktrdr[ray]'") from exc
    if ray.is_initialized():
        return False
    os.environ.setdefault(_RAY_FAILURE_HANDLER, "1")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address == "local":
        options["num_cpus"] = num_cpus
    else:
        options["address"] = address
    if address.startswith("ray://"):
        # Ray Client: no node starts here and nothing listens here; it connects to the cluster
        # the user named, and it refuses node options such as the node's address.
        ray.init(**options)
        return True
    with _clusters_off():
        ray.init(_node_ip_address=LOOPBACK, **options)
    return True


LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def _clusters_off() -> Iterator[None]:
    """Ray's cluster switch off while Ray starts (for the processes it starts, and for a Ray
    imported before); restored after, so later connections elsewhere are unaffected."""
    from ray._private import ray_constants

    saved = os.environ.get(_RAY_CLUSTERS), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_RAY_CLUSTERS] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved[0] is None:
            os.environ.pop(_RAY_CLUSTERS, None)
        else:
            os.environ[_RAY_CLUSTERS] = saved[0]
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]


class RayHandle(HandleState):
    """One run as a Ray task."""

    def __init__(
        self,
        spec: RunSpec,
        backend: RayBackend,
        on_progress: ProgressListener | None,
        on_finish: FinishListener | None,
    ) -> None:
        super().__init__(spec, on_progress, on_finish)
        self._backend = backend
        self._cancel_requested = False
        self._kill_at: float | None = None

    def cancel(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Cancel through the run's token; Ray cancels the task if it has not ended ``grace_s``
        seconds later. A queued run ends cancelled at once."""
        with self._lock:
            if self._cancel_requested or self._outcome is not None:
                return
            self._cancel_requested = True
            self._kill_at = time.monotonic() + grace_s
        self._backend._cancel(self)


class RayBackend:
    """Runs as Ray tasks on the cluster at ``address`` (``local``, ``auto``, ``ray://host:port``;
    connected here unless this process already is), one CPU each, at most ``max_running`` at
    once. ``shutdown`` cancels what is left and disconnects if it connected."""

    # Where its runs train, as the runs ledger records it: (execution mode, backend).
    placement = ("ray", "ray")

    def __init__(self, address: str, max_running: int = 1) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self._connected_here = start_ray(address)
        import ray

        from ktrdr.runs.ray_tasks import RunControl, train_on_ray

        self.max_running = max_running
        self._control = RunControl.remote()  # type: ignore[attr-defined]
        self._task = ray.remote(num_cpus=1, max_retries=0)(train_on_ray)
        self._lock = threading.Lock()
        self._queue: collections.deque[RayHandle] = collections.deque()
        self._running: dict[Any, RayHandle] = {}
        self._closed = threading.Event()
        self._driver = threading.Thread(target=self._drive, daemon=True, name="ktrdr-ray")
        self._driver.start()

    def start(
        self,
        spec: RunSpec,
        on_progress: ProgressListener | None = None,
        on_finish: FinishListener | None = None,
    ) -> RayHandle:
        """Queue ``spec``; the driver submits it once fewer than ``max_running`` run."""
        handle = RayHandle(spec, self, on_progress, on_finish)
        with self._lock:
            self._queue.append(handle)
        return handle

    def shutdown(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Cancel every run left, wait up to ``grace_s`` (plus Ray's cancel) for them, stop."""
        with self._lock:
            handles = [*self._queue, *self._running.values()]
        for handle in handles:
            handle.cancel(grace_s)
        deadline = time.monotonic() + grace_s + 5
        for handle in handles:
            handle.wait(max(0.0, deadline - time.monotonic()))
        self._closed.set()
        self._driver.join(timeout=5)
        if self._connected_here:
            import ray

            ray.shutdown()

    def _cancel(self, handle: RayHandle) -> None:
        import ray

        with self._lock:
            queued = handle in self._queue
            if queued:
                self._queue.remove(handle)
        if queued:
            handle._finish(RunOutcome("cancelled", error="cancelled before it started"))
        else:
            ray.get(self._control.cancel.remote(handle.run_id))

    def _drive(self) -> None:
        import ray

        while not self._closed.is_set():
            self._submit()
            with self._lock:
                running = dict(self._running)
            if not running:
                self._closed.wait(WAIT_S)
                continue
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=WAIT_S)
            snapshots = ray.get(self._control.snapshots.remote())
            for reference, handle in running.items():
                if handle.run_id in snapshots:
                    handle._progress(snapshots[handle.run_id])
                if reference not in ready:
                    self._kill_if_overdue(reference, handle)
            for reference in ready:
                with self._lock:
                    handle = self._running.pop(reference)
                handle._finish(self._outcome(reference, handle))

    def _submit(self) -> None:
        while True:
            with self._lock:
                if not self._queue or len(self._running) >= self.max_running:
                    return
                handle = self._queue.popleft()
                reference = self._task.remote(handle.spec, self._control)
                self._running[reference] = handle
            handle._running()

    def _kill_if_overdue(self, reference: Any, handle: RayHandle) -> None:
        import ray

        with handle._lock:
            overdue = handle._kill_at is not None and time.monotonic() > handle._kill_at
            if overdue:
                handle._kill_at = None  # once
        if overdue:
            logger.warning("run %s ignored cancellation: cancelling its Ray task", handle.run_id)
            ray.cancel(reference, force=True)

    def _outcome(self, reference: Any, handle: RayHandle) -> RunOutcome:
        import ray

        try:
            outcome: RunOutcome = ray.get(reference)
            return outcome
        except Exception as exc:  # a task that died (worker crash, node lost, force-cancelled)
            if handle._cancel_requested:
                return RunOutcome("cancelled", error="cancelled; Ray cancelled the task")
            return RunOutcome(
                "failed", error_type="TrainingError", error=f"the Ray task failed: {exc}"
            )
