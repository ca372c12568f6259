"""Where a training runs: one protocol, the way an HTTP client has one transport interface.

A ``RunBackend`` starts a ``RunSpec`` and hands back a ``RunHandle``; the handle answers
``status()``, ``snapshot()``, ``cancel(grace_s)``, ``wait()`` and ``outcome()`` whatever runs
the training: this process (``InProcessBackend``), worker processes (``RunPool``), Ray tasks
(``RayBackend``) or the training host (``HostBackend``). Every training on every backend goes
through ``StrategyTrainer`` (``ktrdr.runs.worker.train_one``), so the executor flag and the
rollout apply everywhere. ``run_all`` is the one loop that follows a batch of runs to its end.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ktrdr.async_infrastructure.cancellation import CancellationToken
from ktrdr.async_infrastructure.status import TERMINAL, Status, TerminalStatus
from ktrdr.runs.ledger import RunLedger, RunRecorder, with_chosen_path
from ktrdr.store.received import SealedArtifact
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

DEFAULT_GRACE_S = 10.0
# How often run_all looks at the caller's token (a token has no callback to wait on).
TOKEN_POLL_S = 0.1


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended. ``artifact`` holds the model's sealed bytes when the run was asked not to
    save (``spec.save`` off): the receiver checks them with ``ktrdr.store.received``."""

    status: TerminalStatus
    result: dict[str, Any] | None = None
    artifact: SealedArtifact | None = None
    error_type: str | None = None
    error: str | None = None
    # The worker's peak resident memory, when it reported one.
    peak_rss_bytes: int | None = None


ProgressListener = Callable[["RunHandle", dict[str, Any]], None]
FinishListener = Callable[["RunHandle"], None]
# run id, status, latest progress snapshot (or None)
Listener = Callable[[str, str, dict[str, Any] | None], None]


class RunHandle(Protocol):
    """One run on some backend."""

    run_id: str

    def status(self) -> Status: ...

    def snapshot(self) -> dict[str, Any] | None: ...

    def cancel(self, grace_s: float = DEFAULT_GRACE_S) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def outcome(self) -> RunOutcome | None: ...


class RunBackend(Protocol):
    """Starts runs somewhere; ``shutdown`` cancels what is left and frees what it holds.
    ``placement`` is (execution mode, backend) as the runs ledger records them."""

    placement: tuple[str, str]

    def start(
        self,
        spec: RunSpec,
        on_progress: ProgressListener | None = None,
        on_finish: FinishListener | None = None,
    ) -> RunHandle: ...

    def shutdown(self, grace_s: float = ...) -> None: ...


class HandleState(ABC):
    """What every handle keeps: status, latest snapshot, outcome, and the two listeners.

    A backend's handle subclasses it and calls ``_running()``, ``_progress(snapshot)`` and, once,
    ``_finish(outcome)``; listeners run on the caller of those (a thread of the backend, never
    the caller's thread or an event loop), and a listener that raises is logged, not fatal.
    """

    def __init__(
        self,
        spec: RunSpec,
        on_progress: ProgressListener | None,
        on_finish: FinishListener | None,
    ) -> None:
        self.spec = spec
        self.run_id = spec.run_id
        self._on_progress = on_progress
        self._on_finish = on_finish
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._status: Status = "pending"
        self._snapshot: dict[str, Any] | None = None
        self._outcome: RunOutcome | None = None

    def status(self) -> Status:
        """pending, running, completed, failed or cancelled."""
        with self._lock:
            return self._status

    @abstractmethod
    def cancel(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Ask the run to stop; the backend says how, and what ``grace_s`` allows."""

    def snapshot(self) -> dict[str, Any] | None:
        """The latest progress snapshot (a dict), or None before the first."""
        with self._lock:
            return None if self._snapshot is None else dict(self._snapshot)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ended (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    def outcome(self) -> RunOutcome | None:
        """How the run ended, or None while it has not."""
        with self._lock:
            return self._outcome

    def _running(self) -> None:
        with self._lock:
            if self._status == "pending":
                self._status = "running"

    def _progress(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            if self._status in TERMINAL or snapshot == self._snapshot:
                return
            self._snapshot = dict(snapshot)
        if self._on_progress is None:
            return
        try:
            self._on_progress(self, snapshot)
        except Exception:
            logger.warning("progress listener of run %s failed", self.run_id, exc_info=True)

    def _finish(self, outcome: RunOutcome) -> bool:
        """End the run with ``outcome``; False (and nothing done) when it had ended already."""
        with self._lock:
            if self._status in TERMINAL:
                return False
            self._status = outcome.status
            self._outcome = outcome
        self._ended()
        if self._on_finish is not None:
            try:
                self._on_finish(self)
            except Exception:
                logger.warning("finish listener of run %s failed", self.run_id, exc_info=True)
        self._done.set()
        return True

    def _ended(self) -> None:  # noqa: B027 - optional: most backends have nothing to free
        """Hook for the backend, called once the outcome is set and before the listener."""


def run_all(
    backend: RunBackend,
    specs: Sequence[RunSpec],
    token: CancellationToken | None = None,
    listener: Listener | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    *,
    ledger: RunLedger | None = None,
) -> dict[str, RunOutcome]:
    """Start every spec on ``backend`` and follow them to their end; the outcomes by run id,
    in the order of ``specs``.

    Each run's path (executor or reference) is chosen here, where it starts, unless its spec
    has one. ``listener(run_id, status, snapshot)`` hears each progress report and each
    ending; each run ends as one row of ``ledger`` when one is given. Once ``token`` is
    cancelled every run is cancelled through its handle, the ones that never started first
    (so none starts), each running one with ``grace_s`` to stop by itself. The caller keeps
    the backend, and shuts it down.
    """
    done = threading.Event()
    lock = threading.Lock()
    finished: set[str] = set()
    ids = [spec.run_id for spec in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("run ids must be unique within one batch")
    specs = [with_chosen_path(spec) for spec in specs]
    mode, where = backend.placement
    recorders = {spec.run_id: RunRecorder(ledger, spec, mode=mode, backend=where) for spec in specs}

    def progress(handle: RunHandle, snapshot: dict[str, Any]) -> None:
        recorders[handle.run_id].progress(snapshot)
        if listener is not None:
            listener(handle.run_id, "running", snapshot)

    def end(handle: RunHandle) -> None:
        outcome = handle.outcome()
        if outcome is not None:
            recorders[handle.run_id].progress(handle.snapshot(), report=False)
            recorders[handle.run_id].finish(
                outcome.status,
                result=outcome.result,
                error_type=outcome.error_type,
                error=outcome.error,
                peak_rss_bytes=outcome.peak_rss_bytes,
            )
        if listener is not None and outcome is not None:
            listener(handle.run_id, outcome.status, handle.snapshot())
        with lock:
            finished.add(handle.run_id)
            if len(finished) == len(ids):
                done.set()

    if not ids:
        return {}
    handles = [backend.start(spec, on_progress=progress, on_finish=end) for spec in specs]
    cancelled = False
    while not done.wait(TOKEN_POLL_S):
        if not cancelled and token is not None and token.is_cancelled():
            cancelled = True
            at = getattr(token, "cancelled_at", None)
            for recorder in recorders.values():
                recorder.cancel_requested(at)
            for handle in reversed(handles):  # pending ones first: they must never start
                handle.cancel(grace_s)
    outcomes = {}
    for handle in handles:
        outcome = handle.outcome()
        assert outcome is not None  # every handle has finished
        outcomes[handle.run_id] = outcome
    return outcomes
