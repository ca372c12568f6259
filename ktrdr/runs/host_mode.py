"""Train on the training host service and keep the model here (``execution_mode="host"``).

``run_on_host`` runs one spec on a ``HostBackend``, mirrors its progress, and saves the
returned model through the one save path (``ktrdr.store.received``), as the backend API does
with a host's callback.
"""

from __future__ import annotations

import logging
from typing import Any

from ktrdr import errors
from ktrdr.async_infrastructure.cancellation import CancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.runs.backend import RunOutcome, run_all
from ktrdr.runs.host_backend import HostBackend
from ktrdr.runs.ledger import RunLedger
from ktrdr.store.artifact_checks import Expected
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.received import save_received
from ktrdr.training.result_building import attach_saved_model
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

# How long the host has to confirm a stop once the caller cancelled.
STOP_WAIT_S = 30.0

_ERRORS: dict[str, type[errors.KtrdrError]] = {
    "StrategyConfigError": errors.StrategyConfigError,
    "DataError": errors.DataError,
    "ModelStorageError": errors.ModelStorageError,
    "CancellationError": errors.CancellationError,
    "ExecutionModeError": errors.ExecutionModeError,
}


def run_on_host(
    spec: RunSpec,
    *,
    host_url: str,
    token: str | None = None,
    progress_manager: GenericProgressManager | None = None,
    cancellation_token: CancellationToken | None = None,
    ledger: RunLedger | None = None,
) -> dict[str, Any]:
    """Train ``spec`` on the host at ``host_url`` and save the model in ``spec.models_dir``;
    the result, its metadata naming the host and the session (the spec's run id).

    Raises the error class the host reported (StrategyConfigError, DataError, TrainingError),
    CancellationError when cancelled (the host session is stopped), ExecutionModeError when the
    host cannot be reached, ModelStorageError when its model is refused here (nothing saved).
    """
    from ktrdr import settings

    token = token if token is not None else settings.service_token()
    manager = progress_manager or GenericProgressManager()
    backend = HostBackend(host_url, token)

    def mirror(run_id: str, status: str, snapshot: dict[str, Any] | None) -> None:
        if snapshot:
            manager.mirror(snapshot)

    try:
        outcome = run_all(
            backend, [spec], cancellation_token, mirror, grace_s=STOP_WAIT_S, ledger=ledger
        )
    finally:
        backend.shutdown(grace_s=0)
    result = _saved(outcome[spec.run_id], spec, manager)
    metadata = dict(result.get("metadata") or {})
    metadata.update(execution_mode="host", host_url=host_url, host_session_id=spec.run_id)
    result["metadata"] = metadata
    manager.complete()
    return result


def _saved(outcome: RunOutcome, spec: RunSpec, manager: GenericProgressManager) -> dict[str, Any]:
    if outcome.status == "cancelled":
        manager.cancelled(outcome.error or "cancelled")
        raise errors.CancellationError(outcome.error or "training cancelled on the host")
    if outcome.status == "failed" or outcome.result is None or outcome.artifact is None:
        message = f"on the training host: {outcome.error or 'no model came back'}"
        manager.fail(message)
        raise _ERRORS.get(str(outcome.error_type), errors.TrainingError)(message)
    try:
        expected = Expected.of(spec.name, spec.symbols, spec.timeframes)
        saved = save_received(outcome.artifact, ModelStorage(spec.models_dir), expected)
    except errors.ModelStorageError as exc:
        manager.fail(str(exc))
        raise errors.ModelStorageError(f"the host's model was not saved here: {exc}") from exc
    return attach_saved_model(outcome.result, saved)
