"""One training, reporting progress and answering cancellation, wherever it runs.

``train_and_report`` is what a run executes on every backend: in this process, in a worker
process of ``RunPool`` (``run_worker``) and in a Ray task. Messages from a worker process to its
parent, over a one-way pipe: ``("progress", snapshot)`` at most a few times a second,
``("resources", {"peak_rss_bytes": n})``, then exactly one ``("outcome", RunOutcome)``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.runs.backend import RunOutcome
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25
# How often a worker's cancel relay looks at the parent's cancel flag.
RELAY_POLL_S = 0.02

# Sends a snapshot; False when nobody listens any more (the run is then cancelled).
Reporter = Callable[[dict[str, Any]], bool]
# A reason to cancel the run now, or None.
StopCheck = Callable[[], str | None]


def train_one(spec: RunSpec, token: Any, manager: Any) -> RunOutcome:
    """Train ``spec`` through ``StrategyTrainer`` (so the flag and the rollout apply) and say
    how it ended; the sealed artifact bytes only when ``spec.save`` is off. Never raises."""
    from ktrdr.errors import CancellationError, KtrdrError
    from ktrdr.store.received import seal
    from ktrdr.training.train_strategy import StrategyTrainer

    try:
        run = StrategyTrainer().train(spec, cancellation_token=token, progress_manager=manager)
    except CancellationError as exc:
        return RunOutcome("cancelled", error=str(exc))
    except KtrdrError as exc:
        return RunOutcome("failed", error_type=type(exc).__name__, error=str(exc))
    except BaseException as exc:  # every ending is reported; nothing escapes silently
        logger.exception("training run failed unexpectedly")
        return RunOutcome(
            "failed", error_type=type(exc).__name__, error=f"unexpected error: {exc!r}"
        )
    artifact = None if spec.save else seal(run.artifact.to_bytes())
    return RunOutcome("completed", result=run.result, artifact=artifact)


def train_and_report(
    spec: RunSpec,
    report: Reporter,
    should_stop: StopCheck | None = None,
    token: ThreadingCancellationToken | None = None,
) -> RunOutcome:
    """Train ``spec`` in this thread while a watcher thread, every ``PROGRESS_INTERVAL_S``,
    reports a changed snapshot and asks ``should_stop`` for a reason to cancel; the last
    snapshot is reported once the run has ended. ``token`` (a fresh one by default) cancels it
    from elsewhere. Never raises."""
    token = token or ThreadingCancellationToken()
    manager = GenericProgressManager(operation_id=spec.run_id)
    finished = threading.Event()

    def watch() -> None:
        last: dict[str, Any] | None = None
        while not finished.wait(PROGRESS_INTERVAL_S):
            reason = None if should_stop is None else should_stop()
            if reason is not None:
                token.cancel(reason)
            snapshot = manager.snapshot().to_dict()
            if snapshot != last and not report(snapshot):
                token.cancel("the process that started this run stopped listening")
            last = snapshot

    watcher = threading.Thread(target=watch, daemon=True, name="ktrdr-run-watch")
    watcher.start()
    outcome = train_one(spec, token, manager)
    finished.set()
    watcher.join()
    report(manager.snapshot().to_dict())
    return outcome


def run_worker(requests: Connection, channel: Connection, cancel: Event) -> None:
    """Entry point of a worker process (spawned; see ``RunPool``).

    The worker imports everything a training needs first (torch's first optimizer alone costs
    most of a second), then runs the requests it is sent, one at a time, until its request pipe
    closes: a pool keeps workers loaded, so a run does not wait for a Python process to start.
    Every run gets its own token and progress; the parent clears ``cancel`` between runs.
    """
    # The parent decides when a run stops: Ctrl-C in a terminal reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _preload()
    while True:
        try:
            request: RunSpec = requests.recv()
        except (EOFError, OSError):  # the pool is done with this worker, or its parent is gone
            break
        if not _serve(request, channel, cancel):
            break
    channel.close()


def _serve(request: RunSpec, channel: Connection, cancel: Event) -> bool:
    """Run one request, reporting on ``channel``; False when the parent stopped listening."""
    sending = threading.Lock()
    listening = [True]
    parent = os.getppid()

    def send(message: tuple[Any, ...]) -> bool:
        with sending:
            try:
                channel.send(message)
                return True
            except (BrokenPipeError, EOFError, OSError):
                listening[0] = False
                return False

    def should_stop() -> str | None:
        if os.getppid() != parent:  # the parent died: nobody wants this run any more
            return "the process that started this run exited"
        return None

    # The parent's cancel reaches the token within RELAY_POLL_S, not at the watcher's next
    # progress tick (a quarter of a second): the rollout holds cancellation to 100 ms.
    token = ThreadingCancellationToken()
    served = threading.Event()

    def relay() -> None:
        # Polled, never waited on: Event.set() in the parent waits for every process asleep in
        # Event.wait() to wake, so a worker stopped or killed in there would hang the cancel.
        while not served.wait(RELAY_POLL_S):
            if cancel.is_set():
                token.cancel("cancelled by request")
                return

    relaying = threading.Thread(target=relay, daemon=True, name="ktrdr-run-cancel")
    relaying.start()
    try:
        outcome = train_and_report(request, lambda s: send(("progress", s)), should_stop, token)
    finally:
        served.set()
        relaying.join()
    send(("resources", {"peak_rss_bytes": peak_rss_bytes()}))
    send(("outcome", outcome))
    return listening[0]


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux and macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _preload() -> None:
    """Import what a run would import on its way (a quarter of a first run's time otherwise)."""
    import scipy.special  # noqa: F401  (the verdict's binomial test)
    import skfuzzy  # noqa: F401
    import talib  # noqa: F401
    import torch  # noqa: F401

    import ktrdr.training.executor
    import ktrdr.training.train_strategy  # noqa: F401
