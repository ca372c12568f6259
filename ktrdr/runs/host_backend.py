"""``HostBackend``: runs on the training host service, followed over HTTP.

Each run is one host session whose id is the spec's run id. A follower thread per run starts the
session, carries its progress to the handle, asks the host to stop it when the run is cancelled,
and, once it ended, takes the result: from the host (``GET /training/result``), or, when the
caller receives the host's callback itself (``delivered``), from that callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ktrdr import errors
from ktrdr.async_infrastructure.status import TERMINAL
from ktrdr.config.loader import StrategySource
from ktrdr.runs.backend import (
    DEFAULT_GRACE_S,
    FinishListener,
    HandleState,
    ProgressListener,
    RunOutcome,
)
from ktrdr.runs.host_client import HostClient, HostServiceError
from ktrdr.runs.transfer import decode_artifact
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
# How long the host may stay unreachable while a session is followed before the run fails.
HOST_UNREACHABLE_S = 30.0
# How such a failure begins: the session may well go on there, and its result is still taken.
LOST_CONTACT = "lost contact with the training host"
# After the host reports completion, how long its callback may take before the result is pulled
# (the host retries after 1, 2 and 4 s).
CALLBACK_WAIT_S = 10.0

# True once the caller has received the host's callback for this run id.
Delivered = Callable[[str], bool]


def strategy_text(strategy: StrategySource) -> str:
    """The strategy as YAML text to send: a file's content, or a dict dumped in its key order."""
    if isinstance(strategy, Mapping):
        return yaml.safe_dump(dict(strategy), sort_keys=False)
    path = Path(strategy)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.StrategyConfigError(f"cannot read strategy file {path}: {exc}") from exc


def outcome_from_payload(payload: Mapping[str, Any]) -> RunOutcome:
    """The RunOutcome in a host's result payload (what it posts to a callback or answers at
    /training/result); a completed one carries the sealed artifact, still to be checked on
    receipt. A payload whose artifact does not decode becomes a failed outcome saying why."""
    status = payload.get("status")
    if status not in TERMINAL:
        return RunOutcome("failed", error_type="TrainingError", error="the host sent no outcome")
    if status != "completed":
        return RunOutcome(
            status, error_type=payload.get("error_type"), error=payload.get("error") or status
        )
    result = payload.get("result")
    if not isinstance(result, dict) or not payload.get("artifact"):
        return RunOutcome(
            "failed", error_type="TrainingError", error="the host's result holds no model"
        )
    try:
        sealed = decode_artifact(payload["artifact"])
    except ValueError as exc:
        return RunOutcome(
            "failed", error_type="ModelStorageError", error=f"the host's model was refused: {exc}"
        )
    return RunOutcome("completed", result=result, artifact=sealed)


class HostHandle(HandleState):
    """One run as a session on the training host."""

    def __init__(
        self,
        spec: RunSpec,
        backend: HostBackend,
        on_progress: ProgressListener | None,
        on_finish: FinishListener | None,
    ) -> None:
        super().__init__(spec, on_progress, on_finish)
        self._backend = backend
        self._stop_wanted = threading.Event()
        self._stop_by: float | None = None

    def cancel(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Ask the host to stop the session; if it has not confirmed ``grace_s`` seconds later,
        the run ends cancelled here anyway (the host's model, if one comes, is not taken)."""
        with self._lock:
            if self._stop_by is not None or self._outcome is not None:
                return
            self._stop_by = time.monotonic() + grace_s
        self._stop_wanted.set()

    def _follow(self) -> None:
        try:
            with HostClient(self._backend.host_url, self._backend.token) as client:
                outcome = self._session(client)
            if outcome is None:  # let go (the caller is stopping); the session goes on there
                logger.info("run %s: no longer followed; it goes on on the host", self.run_id)
                return
            self._finish(outcome)
        except Exception as exc:  # the run always ends, whatever went wrong
            logger.exception("run %s: following the host failed", self.run_id)
            self._finish(RunOutcome("failed", error_type="TrainingError", error=f"host: {exc}"))

    def _session(self, client: HostClient) -> RunOutcome | None:
        try:
            client.start(
                # The resolved strategy, overrides applied: the host checks it as any input.
                strategy_yaml=strategy_text(self.spec.strategy),
                symbols=list(self.spec.symbols),
                timeframes=list(self.spec.timeframes),
                start_date=self.spec.start_date,
                end_date=self.spec.end_date,
                session_id=self.run_id,
                callback_url=self._backend.callback_url,
                threads=self.spec.threads,
                execution_path=self.spec.execution_path,
            )
        except HostServiceError as exc:
            return RunOutcome("failed", error_type="ExecutionModeError", error=str(exc))
        logger.info("run %s: training on the host %s", self.run_id, self._backend.host_url)
        self._running()
        status = self._until_ended(client)
        if status is None or isinstance(status, RunOutcome):
            return status
        delivered = self._backend.delivered
        if delivered is not None and _wait_for(
            lambda: delivered(self.run_id) or self._backend.detached.is_set(), CALLBACK_WAIT_S
        ):
            if self._backend.detached.is_set():
                return None
            # The caller took the result from the host's callback: nothing to fetch here.
            return RunOutcome(status["status"], error=status.get("error"))
        if delivered is not None:
            logger.warning("run %s: no callback from the host; pulling the result", self.run_id)
        return outcome_from_payload(client.result(self.run_id))

    def _until_ended(self, client: HostClient) -> dict[str, Any] | RunOutcome | None:
        """The session's last status, the outcome that ended following it early, or None once
        the backend lets its runs go (``HostBackend.detach``)."""
        stop_sent = False
        unreachable_since: float | None = None
        while True:
            if self._backend.detached.is_set():
                return None
            if self._stop_wanted.is_set() and not stop_sent:
                stop_sent = _stop(client, self.run_id)
            if self._stop_by is not None and time.monotonic() > self._stop_by:
                return RunOutcome(
                    "cancelled", error="cancelled; the host did not confirm the stop in time"
                )
            try:
                status = client.status(self.run_id)
                unreachable_since = None
            except HostServiceError as exc:
                if exc.status_code == 404:
                    return RunOutcome(
                        "failed",
                        error_type="TrainingError",
                        error="the host lost the session (restarted?)",
                    )
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > HOST_UNREACHABLE_S:
                    return RunOutcome(
                        "failed",
                        error_type="ExecutionModeError",
                        error=(
                            f"{LOST_CONTACT} for {HOST_UNREACHABLE_S:g} s ({exc}); a result "
                            "it sends later is still taken"
                        ),
                    )
                self._stop_wanted.wait(POLL_INTERVAL_S)
                continue
            if status.get("progress"):
                self._progress(status["progress"])
            if status["status"] in TERMINAL and status.get("result_ready"):
                return status
            # A follower thread of its own, never an event loop; a stop request wakes it.
            self._stop_wanted.wait(POLL_INTERVAL_S)


class HostBackend:
    """Runs on the host service at ``host_url``. With ``callback_url`` the host posts each
    result there, and ``delivered(run_id)`` tells when the caller has it; without, results
    are pulled from the host."""

    # Where its runs train, as the runs ledger records it: (execution mode, backend).
    placement = ("host", "host")

    def __init__(
        self,
        host_url: str,
        token: str | None = None,
        *,
        callback_url: str | None = None,
        delivered: Delivered | None = None,
    ) -> None:
        self.host_url = host_url
        self.token = token
        self.callback_url = callback_url
        self.delivered = delivered
        self._lock = threading.Lock()
        self._handles: list[HostHandle] = []
        self.detached = threading.Event()

    def start(
        self,
        spec: RunSpec,
        on_progress: ProgressListener | None = None,
        on_finish: FinishListener | None = None,
    ) -> HostHandle:
        """Start a host session for ``spec`` and follow it in a thread of its own."""
        handle = HostHandle(spec, self, on_progress, on_finish)
        with self._lock:
            self._handles = [h for h in self._handles if h.outcome() is None] + [handle]
        threading.Thread(
            target=handle._follow, daemon=True, name=f"ktrdr-host-{spec.run_id[:8]}"
        ).start()
        return handle

    def detach(self) -> None:
        """Stop following every session and leave them running on the host: a caller that
        stops (the backend API) picks them up again when it starts. Their handles never end."""
        self.detached.set()
        with self._lock:
            self._handles = []

    def shutdown(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Stop every session still followed and wait up to ``grace_s`` for each to end."""
        with self._lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            handle.cancel(grace_s)
        for handle in handles:
            handle.wait(grace_s + POLL_INTERVAL_S * 5)


def _stop(client: HostClient, run_id: str) -> bool:
    """Ask the host to stop ``run_id``; True once asked (or it has ended meanwhile)."""
    try:
        client.stop(run_id)
    except HostServiceError as exc:
        if exc.status_code not in (404, 409):  # 409: it ended meanwhile, as status will show
            logger.warning("run %s: stop on the host failed: %s", run_id, exc)
            return False
    return True


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL_S)  # in the follower thread
    return True
