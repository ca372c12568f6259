"""``InProcessBackend``: runs in threads of the caller's process.

No worker to start or to load, and nothing to send: the cheapest placement for a few short runs
(walk-forward's folds one after another). A run here cannot be killed: cancelling it sets its
token, and it stops at its next check (within an epoch).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.runs.backend import (
    DEFAULT_GRACE_S,
    FinishListener,
    HandleState,
    ProgressListener,
    RunOutcome,
)
from ktrdr.runs.worker import train_and_report
from ktrdr.training.run_spec import RunSpec


class InProcessHandle(HandleState):
    """One run in a thread of this process."""

    def __init__(
        self,
        spec: RunSpec,
        on_progress: ProgressListener | None,
        on_finish: FinishListener | None,
    ) -> None:
        super().__init__(spec, on_progress, on_finish)
        self._token = ThreadingCancellationToken()

    def cancel(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Stop the run at its next cancellation check; a pending one ends cancelled at once.
        ``grace_s`` has no use here: nothing in this process may be killed."""
        self._token.cancel("cancelled by request")
        if self.status() == "pending":
            self._finish(RunOutcome("cancelled", error="cancelled before it started"))

    def _run(self) -> None:
        self._running()
        if self.status() != "running":  # cancelled while it waited for a slot
            return
        self._finish(train_and_report(self.spec, self._report, token=self._token))

    def _report(self, snapshot: dict[str, object]) -> bool:
        self._progress(dict(snapshot))
        return True


class InProcessBackend:
    """Trains in threads of this process, at most ``max_running`` at once (one by default:
    trainings in one process share its torch threads)."""

    # Where its runs train, as the runs ledger records it: (execution mode, backend).
    placement = ("local", "in_process")

    def __init__(self, max_running: int = 1) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        # Runs start in the order they were queued.
        self._threads = ThreadPoolExecutor(max_running, thread_name_prefix="ktrdr-run-here")
        self._lock = threading.Lock()
        self._handles: list[InProcessHandle] = []

    def start(
        self,
        spec: RunSpec,
        on_progress: ProgressListener | None = None,
        on_finish: FinishListener | None = None,
    ) -> InProcessHandle:
        """Queue ``spec``; it trains in a thread of this process once a slot is free."""
        handle = InProcessHandle(spec, on_progress, on_finish)
        with self._lock:
            self._handles.append(handle)
        self._threads.submit(handle._run)
        return handle

    def shutdown(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Cancel every run that has not ended and wait up to ``grace_s`` for each to stop."""
        with self._lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            handle.cancel()
        for handle in handles:
            handle.wait(grace_s)
        self._threads.shutdown(wait=False, cancel_futures=True)
