"""The host's training sessions: one run each, its result kept until fetched or expired."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from ktrdr.runs import RunHandle, RunOutcome, RunPool
from ktrdr.runs.ledger import RunRecorder
from ktrdr.runs.transfer import encode_artifact
from ktrdr.service_client import bearer_headers
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

CALLBACK_RETRY_DELAYS_S = (1.0, 2.0, 4.0)
CALLBACK_TIMEOUT_S = 8.0
# A fetched result stays a little longer, in case the answer to the fetch was lost.
KEEP_AFTER_FETCH_S = 60.0
# How long a stopping host waits for the deliveries under way (each one tries several times).
SHUTDOWN_DELIVERY_WAIT_S = 10.0
STOPPED_WHILE_RUNNING = (
    "the training host was stopped while this training ran; start the training again"
)


class SessionsFull(Exception):
    """Every run slot and queue place is taken."""


@dataclass
class Session:
    session_id: str
    callback_url: str | None
    handle: RunHandle | None = None
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None
    payload: dict[str, Any] | None = None
    callback_delivered: bool = False
    callback_attempts: int = 0
    fetched: float | None = None
    stop_requested: bool = False
    # Follows the run for this host's /metrics (the row itself is its starter's).
    recorder: RunRecorder | None = None


class SessionRegistry:
    """Sessions by id, the pool that runs them, and the callback deliveries."""

    def __init__(
        self,
        pool: RunPool,
        max_pending: int,
        result_ttl_s: float,
        token: str | None,
        retry_delays_s: tuple[float, ...] = CALLBACK_RETRY_DELAYS_S,
    ) -> None:
        self.pool = pool
        self.max_pending = max_pending
        self.result_ttl_s = result_ttl_s
        self.token = token
        self.retry_delays_s = retry_delays_s
        self._lock = threading.RLock()
        self._sessions: dict[str, Session] = {}
        self._deliveries: list[threading.Thread] = []
        self._stopping = False

    def get(self, session_id: str) -> Session | None:
        self._expire()
        with self._lock:
            return self._sessions.get(session_id)

    def start(self, request: RunSpec, callback_url: str | None) -> tuple[Session, bool]:
        """The session ``request.run_id``: the existing one (False) or a new one started (True).

        Raises SessionsFull when every slot and queue place is taken.
        """
        self._expire()
        session_id = request.run_id
        with self._lock:
            existing = self._sessions.get(session_id)
            if existing is not None:
                return existing, False
            if self.pool.running + self.pool.pending >= self.pool.max_running + self.max_pending:
                raise SessionsFull
            # Registered before its run starts, and under the lock, so two starts with one id
            # cannot both start a run. Re-entrant: a run that fails to start finishes (and
            # reports back) inside start.
            session = Session(session_id, callback_url=callback_url)
            session.recorder = RunRecorder(None, request, mode="host", backend="pool")
            self._sessions[session_id] = session
            session.handle = self.pool.start(
                request, on_progress=self._progress, on_finish=self._finished
            )
        return session, True

    def counts(self) -> dict[str, int]:
        with self._lock:
            sessions = list(self._sessions.values())
        return {
            "running": self.pool.running,
            "pending": self.pool.pending,
            "capacity": self.pool.max_running,
            "queue": self.max_pending,
            "sessions": len(sessions),
        }

    def mark_fetched(self, session: Session) -> None:
        with self._lock:
            if session.fetched is None:
                session.fetched = time.monotonic()

    def stop(self, session: Session, grace_s: float) -> None:
        """Stop ``session`` on its client's request: it ends cancelled."""
        assert session.handle is not None
        with self._lock:
            session.stop_requested = True
        session.handle.cancel(grace_s)

    def shutdown(self) -> None:
        """Stop every run (each ends failed: the host stopped, nobody cancelled it), then give
        the deliveries under way, these endings among them, a bounded time to arrive."""
        with self._lock:
            self._stopping = True
        self.pool.shutdown()
        deadline = time.monotonic() + SHUTDOWN_DELIVERY_WAIT_S
        with self._lock:
            deliveries = list(self._deliveries)
        for delivery in deliveries:
            delivery.join(max(0.0, deadline - time.monotonic()))

    def _progress(self, handle: RunHandle, snapshot: dict[str, Any]) -> None:
        with self._lock:
            session = self._sessions.get(handle.run_id)
        if session is not None and session.recorder is not None:
            session.recorder.progress(snapshot)

    def _finished(self, handle: RunHandle) -> None:
        outcome = handle.outcome()
        with self._lock:
            session = self._sessions.get(handle.run_id)
        if session is None or outcome is None:
            return
        if session.recorder is not None:
            session.recorder.progress(handle.snapshot(), report=False)
            session.recorder.finish(
                outcome.status,
                result=outcome.result,
                error_type=outcome.error_type,
                error=outcome.error,
                peak_rss_bytes=outcome.peak_rss_bytes,
            )
        with self._lock:
            stopped_here = self._stopping and not session.stop_requested
        if outcome.status == "cancelled" and stopped_here:
            # Nobody asked for this: the host is going away. Said so, not "cancelled by request".
            outcome = RunOutcome(
                "failed", error_type="ExecutionModeError", error=STOPPED_WHILE_RUNNING
            )
        payload: dict[str, Any] = {
            "session_id": session.session_id,
            "status": outcome.status,
            "result": outcome.result,
            "artifact": None,
            "error": outcome.error,
            "error_type": outcome.error_type,
        }
        if outcome.artifact is not None:
            payload["artifact"] = encode_artifact(outcome.artifact).model_dump()
        with self._lock:
            session.payload = payload
            session.finished = time.monotonic()
        logger.info("session %s ended %s", session.session_id, outcome.status)
        if session.callback_url:
            delivery = threading.Thread(
                target=self._deliver, args=(session,), daemon=True, name="ktrdr-callback"
            )
            with self._lock:
                self._deliveries = [d for d in self._deliveries if d.is_alive()] + [delivery]
            delivery.start()

    def _deliver(self, session: Session) -> None:
        """POST the payload to the callback URL: once, then after each retry delay."""
        assert session.callback_url is not None and session.payload is not None
        delays = (0.0, *self.retry_delays_s)
        for attempt, delay in enumerate(delays, start=1):
            time.sleep(delay)  # a delivery thread of its own: nothing else waits on it
            session.callback_attempts = attempt
            try:
                response = httpx.post(
                    session.callback_url,
                    json=session.payload,
                    headers=bearer_headers(self.token),
                    timeout=CALLBACK_TIMEOUT_S,
                )
            except httpx.HTTPError as exc:
                logger.warning(
                    "callback for session %s, attempt %d/%d: %s",
                    session.session_id,
                    attempt,
                    len(delays),
                    exc,
                )
                continue
            if response.is_success:
                session.callback_delivered = True
                return
            logger.warning(
                "callback for session %s, attempt %d/%d: HTTP %d %s",
                session.session_id,
                attempt,
                len(delays),
                response.status_code,
                response.text[:200],
            )
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                return  # the receiver refused this payload: sending it again changes nothing
        logger.warning(
            "callback for session %s not delivered; the result stays at GET /training/result",
            session.session_id,
        )

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            for session_id, session in list(self._sessions.items()):
                if session.finished is None:
                    continue
                fetched_long_ago = (
                    session.fetched is not None and now - session.fetched > KEEP_AFTER_FETCH_S
                )
                if fetched_long_ago or now - session.finished > self.result_ttl_s:
                    del self._sessions[session_id]
