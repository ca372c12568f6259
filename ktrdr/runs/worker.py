"""The worker process: one training, reporting progress and answering cancellation.

Messages to the parent, over a one-way pipe: ``("progress", snapshot)`` at most a few times a
second, ``("resources", {"peak_rss_bytes": n})``, then exactly one of
``("completed", result, artifact_bytes | None)``, ``("cancelled", message)`` or
``("failed", error_type, message)``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25


def run_worker(requests: Connection, channel: Connection, cancel: Event) -> None:
    """Entry point of the worker process (spawned; see ``RunPool``).

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
    from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
    from ktrdr.async_infrastructure.progress import GenericProgressManager

    token = ThreadingCancellationToken()
    manager = GenericProgressManager(operation_id=request.run_id)
    sending = threading.Lock()
    finished = threading.Event()
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

    def watch_cancel() -> None:
        while not finished.is_set():
            if cancel.wait(0.05):
                token.cancel("cancelled by request")
                return

    def watch() -> None:
        last: dict[str, Any] | None = None
        while not finished.wait(PROGRESS_INTERVAL_S):
            if os.getppid() != parent:  # the parent died: nobody wants this run any more
                token.cancel("the process that started this run exited")
            snapshot = manager.snapshot().to_dict()
            if snapshot != last and not send(("progress", snapshot)):
                token.cancel("the process that started this run stopped listening")
            last = snapshot

    canceller = threading.Thread(target=watch_cancel, daemon=True, name="ktrdr-run-cancel")
    canceller.start()
    watcher = threading.Thread(target=watch, daemon=True, name="ktrdr-run-watch")
    watcher.start()
    outcome = train_one(request, token, manager)
    finished.set()
    watcher.join()
    canceller.join()
    send(("progress", manager.snapshot().to_dict()))
    send(("resources", {"peak_rss_bytes": peak_rss_bytes()}))
    send(outcome)
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


def train_one(spec: RunSpec, token: Any, manager: Any) -> tuple[Any, ...]:
    """Train ``spec`` through ``StrategyTrainer`` (so the flag and the rollout apply) and say
    how it ended, as the last message of a run: ``("completed", result, artifact_bytes | None)``
    (the bytes only when ``spec.save`` is off), ``("cancelled", message)`` or
    ``("failed", error_type, message)``. Never raises."""
    from ktrdr.errors import CancellationError, KtrdrError
    from ktrdr.training.train_strategy import StrategyTrainer

    try:
        run = StrategyTrainer().train(spec, cancellation_token=token, progress_manager=manager)
    except CancellationError as exc:
        return ("cancelled", str(exc))
    except KtrdrError as exc:
        return ("failed", type(exc).__name__, str(exc))
    except BaseException as exc:  # every ending is reported; nothing escapes silently
        logger.exception("training run failed unexpectedly")
        return ("failed", type(exc).__name__, f"unexpected error: {exc!r}")
    return ("completed", run.result, None if spec.save else run.artifact.to_bytes())
