"""Training operations: started locally (a worker process) or on the host, followed, cancelled,
and finished by the host's callback or by pulling its result."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ktrdr.api.database import TERMINAL, OperationStore
from ktrdr.api.schemas import HostResult, StartTrainingRequest
from ktrdr.config.yaml_safety import load_yaml
from ktrdr.errors import ExecutionModeError, KtrdrError, StrategyConfigError
from ktrdr.runs import RunHandle, RunPool
from ktrdr.runs.execution_mode import ExecutionModeSelector
from ktrdr.runs.host_client import HostClient, HostServiceError
from ktrdr.runs.host_mode import save_host_result, strategy_text
from ktrdr.store.model_storage import ModelStorage
from ktrdr.training.run_spec import RunSpec, build_run_spec

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
# After the host reports completion, how long the callback may take before the result is pulled
# (the host retries after 1, 2 and 4 s).
CALLBACK_WAIT_S = 10.0
# How long the host may stay unreachable while following a session before the operation fails.
HOST_UNREACHABLE_S = 30.0
CANCEL_GRACE_S = 10.0


class RequestError(Exception):
    """A request the service cannot run: ``status_code`` (404, 409, 422) and a message."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class TrainingService:
    """Everything behind /trainings and /operations."""

    def __init__(
        self,
        *,
        store: OperationStore,
        pool: RunPool,
        storage: ModelStorage,
        strategies_dir: Path,
        data_dir: Path,
        selector: ExecutionModeSelector,
        callback_url: str,
        token: str | None,
    ) -> None:
        self.store = store
        self.pool = pool
        self.storage = storage
        self.strategies_dir = strategies_dir
        self.data_dir = data_dir
        self.selector = selector
        self.callback_url = callback_url
        self.token = token
        self._lock = threading.Lock()
        self._local: dict[str, RunHandle] = {}
        self._cancel_requested: set[str] = set()
        self._saving: dict[str, threading.Lock] = {}

    # --- starting ---------------------------------------------------------------------------

    def start(self, body: StartTrainingRequest) -> dict[str, Any]:
        text, source = self._strategy_text(body)
        operation_id = uuid.uuid4().hex
        try:
            raw = load_yaml(text)
            if not isinstance(raw, dict):
                raise StrategyConfigError(f"{source}: not a YAML mapping (a strategy file)")
            spec = build_run_spec(
                raw,
                body.symbols,
                body.timeframes,
                body.start_date,
                body.end_date,
                overrides=body.overrides,
                threads=body.threads,
                data_dir=self.data_dir,
                models_dir=self.storage.root,
                run_id=operation_id,
            )
            choice = self.selector.select(body.execution_mode, body.require_gpu)
        except ExecutionModeError as exc:
            raise RequestError(409, str(exc)) from exc
        except KtrdrError as exc:
            raise RequestError(422, str(exc)) from exc
        request = {
            "strategy": spec.name,
            "symbols": list(spec.symbols),
            "timeframes": list(spec.timeframes),
            "start_date": spec.start_date,
            "end_date": spec.end_date,
            "execution_mode": choice.mode,
            "requested_mode": choice.requested,
            "require_gpu": body.require_gpu,
            "overrides": body.overrides,
        }
        operation = self.store.create(
            operation_id=operation_id,
            kind="training",
            status="pending",
            execution_mode=choice.mode,
            strategy=spec.name,
            request=request,
            warning=choice.warning,
        )
        if choice.mode == "local":
            with self._lock:
                self._local[operation_id] = self.pool.start_run(
                    spec, on_progress=self._local_progress, on_finish=self._local_finished
                )
        else:
            threading.Thread(
                target=self._follow_host,
                args=(spec,),
                daemon=True,
                name=f"ktrdr-host-{operation_id[:8]}",
            ).start()
        logger.info("operation %s: %s training of %s", operation_id, choice.mode, spec.name)
        return {
            "operation_id": operation_id,
            "status": operation.get("status", "pending"),
            "execution_mode": choice.mode,
            "warning": choice.warning,
        }

    def _strategy_text(self, body: StartTrainingRequest) -> tuple[str, str]:
        if body.strategy_yaml is not None:
            return body.strategy_yaml, "strategy_yaml"
        assert body.strategy_name is not None
        path = self.strategies_dir / f"{body.strategy_name}.yaml"
        if not path.resolve().is_relative_to(self.strategies_dir.resolve()) or not path.is_file():
            raise RequestError(
                422, f"no strategy named {body.strategy_name!r} in {self.strategies_dir}"
            )
        return path.read_text(encoding="utf-8"), str(path)

    # --- local runs -------------------------------------------------------------------------

    def _local_progress(self, handle: RunHandle, snapshot: dict[str, Any]) -> None:
        self.store.update(handle.run_id, only_if_active=True, status="running", progress=snapshot)

    def _local_finished(self, handle: RunHandle) -> None:
        outcome = handle.outcome()
        assert outcome is not None
        fields: dict[str, Any] = {"status": outcome.status, "progress": handle.snapshot()}
        if outcome.status == "completed" and outcome.result is not None:
            fields.update(result=outcome.result, model_id=outcome.result.get("model_id"))
        else:
            fields["error"] = outcome.error
        self.store.update(handle.run_id, only_if_active=True, **fields)
        with self._lock:
            self._local.pop(handle.run_id, None)

    # --- host runs --------------------------------------------------------------------------

    def _follow_host(self, spec: RunSpec) -> None:
        """Start the host session and follow it to its end (a thread per host operation)."""
        operation_id = spec.run_id
        client = HostClient(self.selector.host_service_url, self.token)
        try:
            self._run_on_host(client, spec)
        except Exception as exc:  # the operation always ends, whatever went wrong
            logger.exception("operation %s: following the host failed", operation_id)
            self.store.update(
                operation_id, only_if_active=True, status="failed", error=f"host run: {exc}"
            )
        finally:
            client.close()

    def _run_on_host(self, client: HostClient, spec: RunSpec) -> None:
        operation_id = spec.run_id
        try:
            client.start(
                # The resolved strategy, overrides applied: the host checks it as any input.
                strategy_yaml=strategy_text(spec.strategy),
                symbols=list(spec.symbols),
                timeframes=list(spec.timeframes),
                start_date=spec.start_date,
                end_date=spec.end_date,
                session_id=operation_id,
                callback_url=self.callback_url,
                threads=spec.threads,
            )
        except HostServiceError as exc:
            self.store.update(operation_id, only_if_active=True, status="failed", error=str(exc))
            return
        self.store.update(
            operation_id, only_if_active=True, status="running", host_session_id=operation_id
        )
        stop_sent = False
        unreachable_since: float | None = None
        while True:
            if not stop_sent and self._is_cancel_requested(operation_id):
                stop_sent = self._stop_host(client, operation_id)
            try:
                status = client.status(operation_id)
                unreachable_since = None
            except HostServiceError as exc:
                if exc.status_code == 404:
                    self._end(operation_id, "failed", "the host lost the session (restarted?)")
                    return
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > HOST_UNREACHABLE_S:
                    self._end(operation_id, "failed", f"the host stopped answering: {exc}")
                    return
                time.sleep(POLL_INTERVAL_S)
                continue
            if status.get("progress"):
                self.store.update(operation_id, only_if_active=True, progress=status["progress"])
            if status["status"] in TERMINAL and status.get("result_ready"):
                break
            time.sleep(POLL_INTERVAL_S)  # a follower thread of its own, not an event loop
        if status["status"] != "completed":
            self._end(operation_id, status["status"], status.get("error") or status["status"])
            return
        deadline = time.monotonic() + CALLBACK_WAIT_S
        while time.monotonic() < deadline:
            current = self.store.get(operation_id)
            if current is None or current["status"] in TERMINAL:
                return  # the callback finished it
            time.sleep(POLL_INTERVAL_S)
        logger.warning("operation %s: no callback from the host; pulling the result", operation_id)
        payload = HostResult.model_validate(client.result(operation_id))
        self.receive(payload)

    def _stop_host(self, client: HostClient, operation_id: str) -> bool:
        try:
            client.stop(operation_id)
        except HostServiceError as exc:
            if exc.status_code not in (404, 409):
                logger.warning("operation %s: stop on the host failed: %s", operation_id, exc)
                return False
        return True

    def _end(self, operation_id: str, status: str, error: str) -> None:
        self.store.update(operation_id, only_if_active=True, status=status, error=error)

    # --- the host's result ------------------------------------------------------------------

    def receive(self, payload: HostResult) -> dict[str, Any]:
        """The host's result for operation ``payload.session_id``: saved exactly once.

        Raises RequestError 404 (unknown operation), 409 (it ended otherwise), 400 (a payload
        that does not verify or load; nothing is saved).
        """
        operation_id = payload.session_id
        with self._lock:
            lock = self._saving.setdefault(operation_id, threading.Lock())
        with lock:  # a callback and a pull for one operation never save twice
            operation = self.store.get(operation_id)
            if operation is None or operation["execution_mode"] != "host":
                raise RequestError(404, f"no host operation {operation_id!r}")
            if operation["status"] == "completed":
                return {"operation_id": operation_id, "model_id": operation["model_id"]}
            if operation["status"] in TERMINAL:
                raise RequestError(
                    409, f"operation {operation_id} already ended {operation['status']}"
                )
            if payload.status != "completed":
                self._end(operation_id, payload.status, payload.error or payload.status)
                return {"operation_id": operation_id, "model_id": None}
            if self._is_cancel_requested(operation_id):
                self._end(operation_id, "cancelled", "cancelled; the host's model was discarded")
                return {"operation_id": operation_id, "model_id": None}
            try:
                result = save_host_result(payload.model_dump(), self.storage)
            except ValueError as exc:
                raise RequestError(400, f"the model payload was refused: {exc}") from exc
            except KtrdrError as exc:
                self._end(operation_id, "failed", f"saving the host's model failed: {exc}")
                raise RequestError(500, str(exc)) from exc
            metadata = dict(result.get("metadata") or {})
            metadata.update(execution_mode="host", host_session_id=operation_id)
            result["metadata"] = metadata
            self.store.update(
                operation_id, status="completed", result=result, model_id=result["model_id"]
            )
            logger.info("operation %s: host model saved as %s", operation_id, result["model_id"])
            return {"operation_id": operation_id, "model_id": result["model_id"]}

    # --- cancelling -------------------------------------------------------------------------

    def cancel(self, operation_id: str) -> dict[str, Any]:
        operation = self.store.get(operation_id)
        if operation is None:
            raise RequestError(404, f"no operation {operation_id!r}")
        if operation["status"] in TERMINAL:
            raise RequestError(409, f"operation {operation_id} already ended {operation['status']}")
        with self._lock:
            self._cancel_requested.add(operation_id)
            handle = self._local.get(operation_id)
        if handle is not None:
            handle.cancel(CANCEL_GRACE_S)
        return {"operation_id": operation_id, "status": "cancelling"}

    def _is_cancel_requested(self, operation_id: str) -> bool:
        with self._lock:
            return operation_id in self._cancel_requested

    def shutdown(self) -> None:
        self.pool.shutdown()
