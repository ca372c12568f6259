"""Training operations: started locally (a worker process) or on the host, followed, cancelled,
and finished by the host's callback or by pulling its result.

Both placements are run backends (``RunPool`` and ``HostBackend``): an operation is a run
handle, its progress and end come through the handle's listeners, and a host's model becomes a
saved version through the one save path (``ktrdr.store.received``), whether it came by callback
or was pulled.
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Any

from ktrdr import settings
from ktrdr.api.database import OperationStore, OperationStoreError
from ktrdr.api.rollout_file import applied, load_rollout, save_rollout
from ktrdr.api.schemas import HostResult, StartTrainingRequest, TrainingConfig
from ktrdr.async_infrastructure.status import TERMINAL
from ktrdr.config.loader import ParsedStrategy, StrategySource, parse_strategy_text
from ktrdr.data.store import missing_series
from ktrdr.errors import ExecutionModeError, KtrdrError
from ktrdr.runs import RunBackend, RunHandle, RunOutcome
from ktrdr.runs.execution_mode import ExecutionModeSelector
from ktrdr.runs.host_backend import (
    LOST_CONTACT,
    HostBackend,
    HostHandle,
    outcome_from_payload,
    strategy_text,
)
from ktrdr.runs.ledger import RunLedger, RunRecorder, with_chosen_path
from ktrdr.runs.pool import PoolHandle
from ktrdr.runs.shadow import start_shadow
from ktrdr.store.artifact_checks import Expected
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.received import ArtifactRefused, save_received
from ktrdr.training.result_building import attach_saved_model
from ktrdr.training.rollout import RolloutSettings
from ktrdr.training.run_spec import RunSpec, build_run_spec

logger = logging.getLogger(__name__)

CANCEL_GRACE_S = 10.0
STOPPED_WHILE_RUNNING = "the backend was stopped while this training ran; start the training again"
# Operations that may wait for a slot; beyond them a start is refused (503) instead of queuing
# without bound in memory.
DEFAULT_MAX_PENDING = 8


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
        pool: RunBackend,
        storage: ModelStorage,
        strategies_dir: Path,
        data_dir: Path,
        selector: ExecutionModeSelector,
        callback_url: str,
        token: str | None,
        max_pending: int = DEFAULT_MAX_PENDING,
        ledger: RunLedger | None = None,
        rollout: RolloutSettings | None = None,
        rollout_file: Path | None = None,
    ) -> None:
        self.store = store
        self.ledger = ledger
        # The rollout's settings: the environment's, under those changed at run time and kept
        # in ``rollout_file`` (StrategyConfigError for either when not valid).
        self.rollout_file = rollout_file
        base = rollout or RolloutSettings.from_environment()
        self.rollout = base if rollout_file is None else load_rollout(rollout_file, base)
        self.pool = pool
        self.storage = storage
        self.strategies_dir = strategies_dir
        self.data_dir = data_dir
        self.selector = selector
        self.callback_url = callback_url
        self.token = token
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._handles: dict[str, RunHandle] = {}
        # Each operation's run, followed into its ledger row.
        self._recorders: dict[str, RunRecorder] = {}
        self._cancel_requested: set[str] = set()
        self._saving: dict[str, threading.Lock] = {}
        self._starting = 0  # starts past the waiting bound's check, not yet handles
        self._stopping = False
        self.host = HostBackend(
            selector.host_service_url,
            token,
            callback_url=callback_url,
            delivered=self._ended,
        )

    # --- starting ---------------------------------------------------------------------------

    def start(self, body: StartTrainingRequest) -> dict[str, Any]:
        operation_id = uuid.uuid4().hex
        try:
            spec = build_run_spec(
                self._strategy(body),
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
            missing = missing_series(spec.symbols, spec.timeframes, self.data_dir)
            if choice.mode == "local" and missing:
                raise RequestError(
                    422,
                    f"no bars for {', '.join(missing)} in {self.data_dir}; import them first "
                    "(ktrdr data import)",
                )
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
            "threads": spec.threads,
            # The resolved strategy, overrides applied: what a restarted backend needs to
            # follow a host training again, whatever file or text it came from.
            "strategy_yaml": strategy_text(spec.strategy),
        }
        # The bound is checked and the place taken under one lock, so racing starts never
        # go past it; the place is held until the run's handle counts as waiting itself.
        with self._lock:
            waiting = self._starting + sum(
                1 for h in self._handles.values() if h.status() == "pending"
            )
            if waiting >= self.max_pending:
                raise RequestError(
                    503,
                    f"the backend is busy: {waiting} training(s) already wait for a slot "
                    f"(--max-pending {self.max_pending}); retry later",
                )
            self._starting += 1
        try:
            operation = self.store.create(
                operation_id=operation_id,
                kind="training",
                status="pending",
                execution_mode=choice.mode,
                strategy=spec.name,
                request=request,
                warning=choice.warning,
            )
            backend: RunBackend = self.pool if choice.mode == "local" else self.host
            spec = with_chosen_path(spec, self.rollout)
            mode, where = backend.placement
            with self._lock:
                self._recorders[operation_id] = RunRecorder(
                    self.ledger, spec, mode=mode, backend=where, operation_id=operation_id
                )
            # Never under self._lock: a run that cannot start ends inside start(), and its
            # finish listener takes that lock.
            handle = backend.start(spec, on_progress=self._progress, on_finish=self._finished)
            with self._lock:
                if handle.outcome() is None:  # one that ended already has nothing to cancel
                    self._handles[operation_id] = handle
        finally:
            with self._lock:
                self._starting -= 1
        logger.info("operation %s: %s training of %s", operation_id, choice.mode, spec.name)
        return {
            "operation_id": operation_id,
            "status": operation.get("status", "pending"),
            "execution_mode": choice.mode,
            "warning": choice.warning,
        }

    def _strategy(self, body: StartTrainingRequest) -> StrategySource:
        """The request's strategy: its text read as a file's would be, or the named file (read
        by the strategy loader, with the same limits and messages as on the command line)."""
        if body.strategy_yaml is not None:
            return ParsedStrategy(
                parse_strategy_text(body.strategy_yaml, "strategy_yaml"), "strategy_yaml"
            )
        assert body.strategy_name is not None
        path = self.strategies_dir / f"{body.strategy_name}.yaml"
        if not path.resolve().is_relative_to(self.strategies_dir.resolve()) or not path.is_file():
            raise RequestError(
                422, f"no strategy named {body.strategy_name!r} in {self.strategies_dir}"
            )
        return path

    # --- following runs --------------------------------------------------------------------

    def _recorder(self, operation_id: str, *, last: bool = False) -> RunRecorder | None:
        with self._lock:
            if last:
                return self._recorders.pop(operation_id, None)
            return self._recorders.get(operation_id)

    def _progress(self, handle: RunHandle, snapshot: dict[str, Any]) -> None:
        recorder = self._recorder(handle.run_id)
        if recorder is not None:
            recorder.progress(snapshot)
        fields: dict[str, Any] = {"status": "running", "progress": snapshot}
        if isinstance(handle, HostHandle):  # the host session's id is the operation's
            fields["host_session_id"] = handle.run_id
        elif isinstance(handle, PoolHandle) and handle.pid is not None:
            # Which local process trains it, for whoever watches the machine.
            fields["progress"] = {**snapshot, "worker_pid": handle.pid}
        self.store.update(handle.run_id, only_if_active=True, **fields)

    def _finished(self, handle: RunHandle) -> None:
        outcome = handle.outcome()
        assert outcome is not None
        try:
            if outcome.artifact is not None:  # a host's model, pulled once the session ended
                self._save_host(handle.run_id, outcome, pulled=True)
            elif outcome.status == "completed" and outcome.result is None:
                pass  # the host's callback delivered (and saved) it
            else:
                fields: dict[str, Any] = {"status": outcome.status, "progress": handle.snapshot()}
                if outcome.status == "completed" and outcome.result is not None:
                    fields.update(result=outcome.result, model_id=outcome.result.get("model_id"))
                elif outcome.status == "cancelled" and self._stopped_under(handle.run_id):
                    fields.update(status="failed", error=STOPPED_WHILE_RUNNING)
                else:
                    fields["error"] = outcome.error
                self.store.update(handle.run_id, only_if_active=True, **fields)
        except RequestError as exc:
            logger.error("operation %s: %s", handle.run_id, exc)
        except OperationStoreError as exc:
            # The run is over but its end could not be written; a restart marks it failed.
            result = outcome.result or {}
            logger.error(
                "operation %s ended %s%s, but its end was not recorded: %s",
                handle.run_id,
                outcome.status,
                f" (model {result['model_id']})" if result.get("model_id") else "",
                exc,
            )
        finally:
            with self._lock:
                self._handles.pop(handle.run_id, None)
            self._record(handle, outcome)
            self._shadow(handle, outcome)

    def _shadow(self, handle: RunHandle, outcome: RunOutcome) -> None:
        """The shadow of a completed local run in the shadow sample, started on the pool from
        a thread of its own (never from the pool's thread that tells of the end). A host's run
        is not shadowed: its shadow would train on this machine's device, where the weights
        differ by design."""
        if outcome.status != "completed" or outcome.result is None:
            return
        if not isinstance(handle, PoolHandle):
            return
        with self._lock:
            if self._stopping:
                return
            percent = self.rollout.shadow_percent
        if percent <= 0:
            return
        threading.Thread(
            target=start_shadow,
            args=(self.pool, handle.spec, outcome.result),
            kwargs={"percent": percent, "ledger": self.ledger},
            daemon=True,
            name=f"ktrdr-shadow-{handle.run_id[:8]}",
        ).start()

    # --- runtime settings ------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The default execution mode and the rollout's settings now, with the
        ``USE_TRAINING_EXECUTOR`` flag that overrides them when it is set."""
        with self._lock:
            rollout = self.rollout
        return {
            "default_execution_mode": self.selector.default_mode,
            **rollout.to_dict(),
            "use_training_executor": settings.use_training_executor(),
        }

    def configure(self, body: TrainingConfig) -> dict[str, Any]:
        """Change the settings ``body`` gives, for the runs started from now on; the rollout's
        are kept in the rollout file first (RequestError 500, nothing changed, when it cannot
        be written)."""
        with self._lock:
            rollout = applied(self.rollout, body)
            if rollout != self.rollout and self.rollout_file is not None:
                try:
                    save_rollout(self.rollout_file, rollout)
                except OSError as exc:
                    raise RequestError(
                        500, f"the rollout settings could not be kept in {self.rollout_file}: {exc}"
                    ) from exc
            if rollout != self.rollout:
                logger.info("rollout settings changed: %s", rollout.to_dict())
            self.rollout = rollout
            if body.default_execution_mode is not None:
                self.selector.default_mode = body.default_execution_mode
        return self.config()

    def _record(self, handle: RunHandle, outcome: RunOutcome) -> None:
        """The operation's ledger row: its status as the operation ended (a host's result that
        came by callback is read back from the operation)."""
        recorder = self._recorder(handle.run_id, last=True)
        if recorder is None:
            return
        recorder.progress(handle.snapshot(), report=False)
        status: str = outcome.status
        result, error = outcome.result, outcome.error
        try:
            operation = self.store.get(handle.run_id) or {}
        except OperationStoreError:
            operation = {}
        if operation.get("status") in TERMINAL:
            status = str(operation["status"])
            result = result or operation.get("result")
            error = error or operation.get("error")
        recorder.finish(
            status,
            result=result if isinstance(result, dict) else None,
            error_type=outcome.error_type,
            error=error,
            peak_rss_bytes=outcome.peak_rss_bytes,
        )

    def _stopped_under(self, operation_id: str) -> bool:
        """True when the run ended because this backend is stopping, not on a user's cancel."""
        with self._lock:
            return self._stopping and operation_id not in self._cancel_requested

    def _ended(self, operation_id: str) -> bool:
        """True once the operation has ended (the host's callback finished it)."""
        current = self.store.get(operation_id)
        return current is None or current["status"] in TERMINAL

    def _end(self, operation_id: str, status: str, error: str) -> None:
        """End an operation still open to the host's result; one that failed only for lost
        contact ends again with what the host said."""
        current = self.store.get(operation_id)
        lost = current is not None and current["status"] in TERMINAL and _takes_results(current)
        self.store.update(operation_id, only_if_active=not lost, status=status, error=error)

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
            if not _takes_results(operation):
                raise RequestError(
                    409, f"operation {operation_id} already ended {operation['status']}"
                )
            if payload.status != "completed":
                self._end(operation_id, payload.status, payload.error or payload.status)
                return {"operation_id": operation_id, "model_id": None}
            outcome = outcome_from_payload(payload.model_dump())
            if outcome.artifact is None:
                raise RequestError(400, f"the model payload was refused: {outcome.error}")
            return self._save_host(operation_id, outcome, pulled=False, locked=True)

    def _save_host(
        self, operation_id: str, outcome: RunOutcome, *, pulled: bool, locked: bool = False
    ) -> dict[str, Any]:
        """Check and save a host's model for ``operation_id``, exactly once (a callback and a
        pull may both bring it). Raises RequestError 400 for a model that fails the checks on
        receipt (nothing saved; a pulled one also ends the operation failed, while after a
        refused callback the pull still comes), 500 when the store fails."""
        if not locked:
            with self._lock:
                lock = self._saving.setdefault(operation_id, threading.Lock())
            with lock:
                return self._save_host(operation_id, outcome, pulled=pulled, locked=True)
        operation = self.store.get(operation_id)
        if operation is not None and operation["status"] == "completed":
            return {"operation_id": operation_id, "model_id": operation["model_id"]}
        if operation is None or not _takes_results(operation):
            return {"operation_id": operation_id, "model_id": None}
        if self._is_cancel_requested(operation_id):
            self._end(operation_id, "cancelled", "cancelled; the host's model was discarded")
            return {"operation_id": operation_id, "model_id": None}
        assert outcome.artifact is not None and outcome.result is not None
        request = operation["request"]
        if not isinstance(request, dict):  # a damaged row: what was asked is unknown
            reason = f"the host's model was not saved: {operation['problem']}"
            self._end(operation_id, "failed", reason)
            raise RequestError(409, reason)
        expected = Expected.of(operation["strategy"], request["symbols"], request["timeframes"])
        try:
            saved = save_received(outcome.artifact, self.storage, expected)
        except ArtifactRefused as exc:
            if pulled:
                self._end(operation_id, "failed", f"the host's model was refused: {exc}")
            raise RequestError(400, f"the model payload was refused: {exc}") from exc
        except KtrdrError as exc:
            self._end(operation_id, "failed", f"saving the host's model failed: {exc}")
            raise RequestError(500, str(exc)) from exc
        result = attach_saved_model(outcome.result, saved)
        metadata = dict(result.get("metadata") or {})
        metadata.update(execution_mode="host", host_session_id=operation_id)
        result["metadata"] = metadata
        self.store.update(
            operation_id,
            status="completed",
            result=result,
            model_id=result["model_id"],
            error=None,
        )
        logger.info("operation %s: host model saved as %s", operation_id, result["model_id"])
        return {"operation_id": operation_id, "model_id": result["model_id"]}

    # --- cancelling -------------------------------------------------------------------------

    def cancel(self, operation_id: str) -> dict[str, Any]:
        """Cancel a pending or running operation. Raises RequestError 404 (unknown), 409 (it
        ended; a cancel that arrives while a host's model is saved waits for the save and then
        finds the operation completed)."""
        with self._lock:
            saving = self._saving.setdefault(operation_id, threading.Lock())
        with saving:
            operation = self.store.get(operation_id)
            if operation is None:
                raise RequestError(404, f"no operation {operation_id!r}")
            if operation["status"] in TERMINAL:
                raise RequestError(
                    409, f"operation {operation_id} already ended {operation['status']}"
                )
            with self._lock:
                self._cancel_requested.add(operation_id)
                handle = self._handles.get(operation_id)
                recorder = self._recorders.get(operation_id)
        if recorder is not None:
            recorder.cancel_requested()
        if handle is not None:
            handle.cancel(CANCEL_GRACE_S)
        return {"operation_id": operation_id, "status": "cancelling"}

    def _is_cancel_requested(self, operation_id: str) -> bool:
        with self._lock:
            return operation_id in self._cancel_requested

    def resume(self) -> int:
        """Follow again the host trainings a previous backend left running (their sessions go
        on on the host; a host that forgot one trains it again from the same spec), and fail
        the local ones, whose workers ended with that backend. How many were resumed."""
        failed = self.store.fail_active(
            "the backend restarted while this operation ran", execution_mode="local"
        )
        if failed:
            logger.warning("%d local operation(s) left by a previous backend marked failed", failed)
        resumed = 0
        for operation in self.store.active(execution_mode="host"):
            operation_id = operation["operation_id"]
            try:
                spec = self._spec_of(operation)
            except (KtrdrError, KeyError, TypeError) as exc:
                self._end(
                    operation_id, "failed", f"the backend restarted and cannot follow it: {exc}"
                )
                continue
            handle = self.host.start(spec, on_progress=self._progress, on_finish=self._finished)
            with self._lock:
                if handle.outcome() is None:
                    self._handles[operation_id] = handle
            resumed += 1
        if resumed:
            logger.info("following %d host training(s) again", resumed)
        return resumed

    def _spec_of(self, operation: dict[str, Any]) -> RunSpec:
        request = operation["request"]
        if not isinstance(request, dict) or not isinstance(request.get("strategy_yaml"), str):
            raise KeyError(operation.get("problem") or "its request holds no strategy")
        return build_run_spec(
            parse_strategy_text(request["strategy_yaml"], "strategy_yaml"),
            request["symbols"],
            request["timeframes"],
            request["start_date"],
            request["end_date"],
            threads=request.get("threads"),
            data_dir=self.data_dir,
            models_dir=self.storage.root,
            run_id=operation["operation_id"],
        )

    def shutdown(self) -> None:
        """Stop: local runs end (recorded failed, since nobody cancelled them); host runs go on
        on the host, and the next backend started on this database follows them again."""
        with self._lock:
            self._stopping = True
        self.host.detach()
        self.pool.shutdown()


def _takes_results(operation: dict[str, Any]) -> bool:
    """Still open to a host's result: active, or failed only because the host went quiet."""
    if operation["status"] not in TERMINAL:
        return True
    error = operation.get("error") or ""
    return operation["status"] == "failed" and error.startswith(LOST_CONTACT)
