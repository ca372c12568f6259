"""Start, follow, cancel and bound trainings that run in worker processes."""

from __future__ import annotations

import atexit
import collections
import logging
import multiprocessing
import signal
import threading
import time
import weakref
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from ktrdr.async_infrastructure.status import TERMINAL
from ktrdr.runs.backend import (
    DEFAULT_GRACE_S,
    FinishListener,
    HandleState,
    ProgressListener,
    RunOutcome,
)
from ktrdr.runs.worker import run_worker
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

_CLEAN_FAILURES = frozenset(
    {"StrategyConfigError", "DataError", "TrainingError", "ModelStorageError"}
)


class PoolHandle(HandleState):
    """One run of a ``RunPool``: a ``RunHandle``, plus the worker's ``pid`` while it has one."""

    def __init__(
        self,
        spec: RunSpec,
        pool: RunPool,
        on_progress: ProgressListener | None,
        on_finish: FinishListener | None,
    ) -> None:
        super().__init__(spec, on_progress, on_finish)
        self._pool = pool
        self._ended_work = threading.Event()  # the worker has stopped working on this run
        self._process: multiprocessing.process.BaseProcess | None = None
        self._cancel: Any = None
        self._cancel_requested = False

    @property
    def pid(self) -> int | None:
        """The worker's process id while it has one."""
        return None if self._process is None else self._process.pid

    def cancel(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Ask the run to stop through its cancellation token; kill the worker if it is still
        there ``grace_s`` seconds later. A pending run ends cancelled at once."""
        with self._lock:
            if self._status in TERMINAL or self._cancel_requested:
                return
            self._cancel_requested = True
            pending = self._status == "pending"
            # Under the lock _follow takes to mark the end of this run's work: once the worker
            # is free it may already train the next run, whose cancel flag this must not touch.
            if not pending and self._cancel is not None and not self._ended_work.is_set():
                self._cancel.set()
        if pending and self._pool._withdraw(self):
            self._finish(RunOutcome("cancelled", error="cancelled before it started"))
            return
        # A run that started meanwhile sees _cancel_requested in _start and sets its flag there.
        threading.Thread(
            target=self._kill_after, args=(grace_s,), daemon=True, name="ktrdr-run-grace"
        ).start()

    def _kill_after(self, grace_s: float) -> None:
        if self._ended_work.wait(grace_s):
            return
        # Under the lock that _follow takes to mark the end: a worker that reported in time is
        # never killed, even after it has been handed to another run.
        with self._lock:
            process = None if self._ended_work.is_set() else self._process
            if process is not None and process.is_alive():
                logger.warning(
                    "run %s ignored cancellation for %.0f s: killing it", self.run_id, grace_s
                )
                process.kill()

    def _start(self, worker: _Worker) -> None:
        with self._lock:
            self._process = worker.process
            self._cancel = worker.cancel
        self._running()
        worker.cancel.clear()  # left set by a cancelled earlier run of this worker
        worker.requests.send(self.spec)
        with self._lock:
            if self._cancel_requested:
                worker.cancel.set()
        threading.Thread(
            target=self._follow, args=(worker,), daemon=True, name="ktrdr-run-follow"
        ).start()

    def _follow(self, worker: _Worker) -> None:
        outcome: RunOutcome | None = None
        resources: dict[str, Any] = {}
        while outcome is None:
            try:
                message = worker.messages.recv()
            except (EOFError, OSError):
                break  # the worker exited (or was killed) without a last word
            kind = message[0]
            if kind == "progress":
                self._progress(message[1])
            elif kind == "resources":
                resources = message[1]
            else:
                outcome = message[1]
        with self._lock:
            self._ended_work.set()  # from here the worker is no longer this run's to kill
        if outcome is None:
            worker.discard()
            outcome = self._ended_silently(worker.process)
        if resources.get("peak_rss_bytes") is not None:
            outcome = replace(outcome, peak_rss_bytes=int(resources["peak_rss_bytes"]))
        # A worker that reported its outcome through the library's own errors is whole and
        # loaded: the next run can use it. After anything unexpected it goes.
        reusable = outcome.status != "failed" or outcome.error_type in _CLEAN_FAILURES
        self._pool._returned(worker, reusable and worker.process.is_alive())
        self._finish(outcome)

    def _ended_silently(self, process: multiprocessing.process.BaseProcess) -> RunOutcome:
        code = process.exitcode
        if self._cancel_requested:
            return RunOutcome(
                "cancelled", error="cancelled; the worker was killed after the grace period"
            )
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            reason = f"the worker process was killed by {name}"
        else:
            reason = f"the worker process exited with code {code} before reporting a result"
            if self._snapshot is None:
                # Usually the spawned worker re-ran the caller's script, which started runs at
                # import time; the worker's own traceback went to stderr.
                reason += (
                    ' (from a Python script, start runs under `if __name__ == "__main__":`, '
                    "as with any multiprocessing code)"
                )
        return RunOutcome("failed", error_type="TrainingError", error=reason)

    def _ended(self) -> None:
        self._pool._released(self)


@dataclass
class _Worker:
    """A started worker process waiting for its request."""

    process: multiprocessing.process.BaseProcess
    requests: Connection
    messages: Connection
    cancel: Any
    trained: bool = False  # it has run a training (and is warm)

    @classmethod
    def spawn(cls, context: multiprocessing.context.SpawnContext) -> _Worker:
        """Start a worker; raises ``OSError`` once the process is exiting (``_exiting``)."""
        with _spawning:
            if _exiting.is_set():
                raise OSError("not starting a worker: the process is exiting")
            return cls._spawn(context)

    @classmethod
    def _spawn(cls, context: multiprocessing.context.SpawnContext) -> _Worker:
        request_reader, request_writer = context.Pipe(duplex=False)
        message_reader, message_writer = context.Pipe(duplex=False)
        cancel = context.Event()
        process = context.Process(
            target=run_worker,
            args=(request_reader, message_writer, cancel),
            name="ktrdr-run-worker",
            daemon=True,
        )
        process.start()
        # The child holds the only other ends: its exit closes the pipes.
        request_reader.close()
        message_writer.close()
        return cls(process, request_writer, message_reader, cancel)

    def release(self) -> None:
        """Tell the worker to exit (its recv ends); ``discard`` waits for it."""
        self.requests.close()
        self.messages.close()

    def discard(self) -> None:
        self.release()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# Pools whose process may exit with them still open (a daemon thread left running them).
_open_pools: weakref.WeakSet[RunPool] = weakref.WeakSet()
# Held while a worker starts: the exit hook waits for a start in progress (a process still
# being launched is not yet among the children multiprocessing's hook terminates) and sets
# ``_exiting``, after which none begins.
_spawning = threading.Lock()
_exiting = threading.Event()


@atexit.register
def _close_pools_at_exit() -> None:
    """Close every open pool before multiprocessing's own exit hook terminates the workers.

    That hook was registered when ``multiprocessing.connection`` was imported above, and
    ``atexit`` runs hooks last-registered first, so this one runs before it. Without it, the
    terminated workers' runs end, each ending starts the next waiting run, and the exiting
    process spawns workers it can no longer feed. A worker being launched meanwhile is waited
    for, so that multiprocessing's hook finds and ends it; none starts after this (a start
    raises ``OSError``, and a closed pool ends that run cancelled).
    """
    for pool in list(_open_pools):
        pool._close()
    with _spawning:
        _exiting.set()


class RunPool:
    """Runs trainings in spawned worker processes, at most ``max_running`` at once.

    Workers are reused: one that reported its run's outcome waits, loaded, for the next run (a
    crashed or killed one is replaced). With ``warm`` (the default) one is started before the
    first run, and a spare starts loading whenever none is idle and a place is free.
    ``shutdown()`` ends them all; so does the exit of the process, which first ends every
    waiting run cancelled, so that none starts while the workers are being terminated.
    """

    # Where its runs train, as the runs ledger records it: (execution mode, backend).
    placement = ("local", "pool")

    def __init__(self, max_running: int = 1, warm: bool = True) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self.max_running = max_running
        self.warm = warm
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        # In start order; a cancel takes its run out in O(1), so cancelling the thousands of
        # runs still waiting in a big sweep is not quadratic.
        self._pending: collections.OrderedDict[PoolHandle, None] = collections.OrderedDict()
        self._running: set[PoolHandle] = set()
        self._idle: list[_Worker] = []
        # Threads waiting for workers let go at the end of a run (``_reap``).
        self._reapers: list[threading.Thread] = []
        self._closed = False
        if warm:
            self._idle.append(_Worker.spawn(self._context))
        _open_pools.add(self)

    def start(
        self,
        spec: RunSpec,
        on_progress: ProgressListener | None = None,
        on_finish: FinishListener | None = None,
    ) -> PoolHandle:
        """Queue ``spec``; it starts now if fewer than ``max_running`` runs are running.

        ``on_progress(handle, snapshot)`` and ``on_finish(handle)`` are called from a thread of
        the pool, never from the caller's thread or an event loop. On a pool that is shut
        down the run ends cancelled inside this call, as any run that cannot start does.
        """
        handle = PoolHandle(spec, self, on_progress, on_finish)
        with self._lock:
            closed = self._closed
            if not closed:
                self._pending[handle] = None
        if closed:
            handle._finish(RunOutcome("cancelled", error="not started: the run pool is shut down"))
            return handle
        self._fill()
        return handle

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def shutdown(self, grace_s: float = 5.0) -> None:
        """Cancel every run (pending ones at once) and wait for the workers to end."""
        self._close()
        with self._lock:
            handles = list(self._running)
        for handle in handles:
            handle.cancel(grace_s)
        deadline = time.monotonic() + grace_s + 5
        for handle in handles:
            handle.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:  # all told first, so they exit side by side
            worker.release()
        for worker in idle:
            worker.discard()
        with self._lock:
            reapers, self._reapers = self._reapers, []
        for reaper in reapers:
            reaper.join()

    def _close(self) -> None:
        """Start no more runs: every waiting one ends cancelled, the running ones go on."""
        with self._lock:
            self._closed = True
            waiting = list(self._pending)
            self._pending.clear()
        _open_pools.discard(self)
        for handle in waiting:
            handle._finish(RunOutcome("cancelled", error="cancelled before it started"))

    def _fill(self) -> None:
        while True:
            with self._lock:
                if self._closed or len(self._running) >= self.max_running or not self._pending:
                    return
                handle, _ = self._pending.popitem(last=False)
                self._running.add(handle)
            try:
                self._hand_over(handle)
            except Exception as exc:  # e.g. out of processes: the run fails, the pool goes on
                with self._lock:
                    stopping = self._closed or handle._cancel_requested
                if stopping:
                    # Shut down (or cancelled) while the run was being handed to its worker,
                    # whose pipes the shutdown closed: the run never started, nothing failed.
                    logger.info(
                        "run %s not started: the pool was shut down (%s)", handle.run_id, exc
                    )
                    handle._finish(
                        RunOutcome("cancelled", error="not started: the run pool is shut down")
                    )
                    continue
                logger.exception("could not start run %s", handle.run_id)
                handle._finish(
                    RunOutcome(
                        "failed", error_type="TrainingError", error=f"could not start: {exc}"
                    )
                )

    def _hand_over(self, handle: PoolHandle) -> None:
        """Start ``handle`` on a worker. A worker that cannot take the request (its pipe
        broken or closed: a Ctrl-C from the terminal reaches a worker still starting up, and
        only a shutdown closes one) is discarded and the run goes to a new one, once."""
        worker = self._worker()
        try:
            handle._start(worker)
        except OSError:
            worker.discard()
            with self._lock:
                # A cancelled run or a closing pool gets no new worker: spawning one while the
                # command quits leaves its semaphores to the resource tracker.
                if self._closed or handle._cancel_requested:
                    raise
            handle._start(_Worker.spawn(self._context))

    def _worker(self) -> _Worker:
        """An idle loaded worker if there is one, else a new one; with ``warm``, a new spare
        starts loading as soon as none is left idle while another run could still start
        (measured: loading it beside a run costs the run less than waiting for it later). With
        every place taken a spare is never used before a worker comes back, so none loads: it
        would take a core from the runs and then be let go (on two cores, with one place, a
        spare loading beside each run made the rollout rehearsal's runs of 40 epochs train for
        0.54 to 3.6 s, median 1.58; without it, 0.52 to 0.83 s, median 0.57)."""
        with self._lock:
            alive = [w for w in self._idle if w.process.is_alive()]
            dead = [w for w in self._idle if not w.process.is_alive()]
            chosen = alive.pop(0) if alive else None
            self._idle = alive
            # The run being handed over is among _running already.
            room = len(self._running) < self.max_running
            refill = self.warm and not self._closed and not alive and room
        for worker in dead:
            worker.discard()
        if refill:
            spare = _Worker.spawn(self._context)
            with self._lock:
                keep = not self._closed
                if keep:
                    self._idle.append(spare)
            if not keep:
                spare.discard()
        return chosen if chosen is not None else _Worker.spawn(self._context)

    def _returned(self, worker: _Worker, reusable: bool) -> None:
        """A run ended: its worker waits for the next run, or goes. With no room left, a
        worker that has trained keeps its place over a spare that never has: a process's first
        training pays torch's warm-up, so runs in fresh spares were measurably slower."""
        worker.trained = True
        spare: _Worker | None = None
        with self._lock:
            keep = reusable and not self._closed
            if keep and len(self._idle) >= self.max_running:
                untrained = [w for w in self._idle if not w.trained]
                if untrained:
                    spare = untrained[0]
                    self._idle.remove(spare)
                else:
                    keep = False
            if keep:
                self._idle.append(worker)
        if not keep:
            self._reap(worker)
        if spare is not None:
            self._reap(spare)

    def _reap(self, worker: _Worker) -> None:
        """Let ``worker`` go without waiting for it here: the run it served ends now, not once
        its process has exited (a loaded worker takes most of a second to; waiting made every
        cancel seen by the caller that much late). ``shutdown`` waits for it."""
        worker.release()
        reaper = threading.Thread(target=worker.discard, daemon=True, name="ktrdr-run-reap")
        with self._lock:
            self._reapers = [r for r in self._reapers if r.is_alive()]
            self._reapers.append(reaper)
        reaper.start()

    def _withdraw(self, handle: PoolHandle) -> bool:
        with self._lock:
            return self._pending.pop(handle, False) is None

    def _released(self, handle: PoolHandle) -> None:
        with self._lock:
            self._running.discard(handle)
        self._fill()
