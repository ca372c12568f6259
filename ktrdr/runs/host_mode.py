"""Train on the training host service and keep the model here (``execution_mode="host"``).

``run_on_host`` starts a host session, mirrors its progress, and saves the returned model
through this machine's ``ModelStorage``. ``save_host_result`` is the one way a host's result
becomes a saved model: the backend's callback handler uses it too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ktrdr import errors
from ktrdr.async_infrastructure.cancellation import CancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.config.loader import StrategySource
from ktrdr.store.model_storage import ModelStorage
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
STOP_WAIT_S = 30.0


def strategy_text(strategy: StrategySource) -> str:
    """The strategy as YAML text to send: a file's content, or a dict dumped."""
    if isinstance(strategy, Mapping):
        return yaml.safe_dump(dict(strategy), sort_keys=False)
    path = Path(strategy)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.StrategyConfigError(f"cannot read strategy file {path}: {exc}") from exc


def check_host_artifact(data: bytes) -> Any:
    """The ModelArtifact in ``data`` (loaded with ``weights_only=True``), its weights checked
    against its architecture; ValueError saying what is wrong otherwise."""
    from ktrdr.neural.mlp import build_mlp
    from ktrdr.store.model_artifact import ModelArtifact

    try:
        artifact = ModelArtifact.from_bytes(data)
        network = build_mlp(artifact.architecture)
        network.load_state_dict(artifact.state_dict, strict=True)
    except errors.ModelStorageError as exc:
        raise ValueError(str(exc)) from exc
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"the model's weights do not match its architecture ({exc})") from exc
    names = artifact.manifest.get("feature_names") if isinstance(artifact.manifest, dict) else None
    if not isinstance(names, list) or len(names) != artifact.architecture.get("input_dim"):
        raise ValueError("the model's feature names do not match its input size")
    return artifact


def save_host_result(payload: Mapping[str, Any], storage: ModelStorage) -> dict[str, Any]:
    """Verify, load and save a completed host session's model; the result with where it went.

    ``payload`` is what the host posts to a callback or answers at /training/result.
    ValueError when the payload does not hold a valid model (nothing is saved then).
    """
    from ktrdr.runs.transfer import decode_artifact
    from ktrdr.store.model_storage import SavedModel
    from ktrdr.training.result_building import attach_saved_model

    if payload.get("status") != "completed" or not payload.get("artifact"):
        raise ValueError("the payload holds no completed training")
    result = payload.get("result")
    if not isinstance(result, dict):
        raise ValueError("the payload's result is missing")
    artifact = check_host_artifact(decode_artifact(payload["artifact"]))
    saved: SavedModel = storage.save_model(artifact)
    return attach_saved_model(result, saved)


def run_on_host(
    spec: RunSpec,
    *,
    host_url: str,
    token: str | None = None,
    progress_manager: GenericProgressManager | None = None,
    cancellation_token: CancellationToken | None = None,
) -> dict[str, Any]:
    """Train ``spec`` on the host at ``host_url`` and save the model in ``spec.models_dir``;
    the §9 result. The host session's id is the spec's run id.

    Raises the error class the host reported (StrategyConfigError, DataError, TrainingError),
    CancellationError when cancelled (the host session is stopped), ExecutionModeError when the
    host cannot be reached.
    """
    from ktrdr import settings
    from ktrdr.runs.host_client import HostClient

    token = token if token is not None else settings.service_token()
    manager = progress_manager or GenericProgressManager()
    storage = ModelStorage(spec.models_dir)
    session_id = spec.run_id
    with HostClient(host_url, token) as client:
        client.start(
            # The resolved strategy, overrides applied: the host checks it as any input.
            strategy_yaml=strategy_text(spec.strategy),
            symbols=list(spec.symbols),
            timeframes=list(spec.timeframes),
            start_date=spec.start_date,
            end_date=spec.end_date,
            session_id=session_id,
            threads=spec.threads,
        )
        logger.info("training on the host %s, session %s", host_url, session_id)
        stopped_at: float | None = None
        while True:
            status = client.status(session_id)
            if status.get("progress"):
                manager.mirror(status["progress"])
            ended = status["status"] in ("completed", "failed", "cancelled")
            if ended and status.get("result_ready"):
                break
            if cancellation_token is not None and cancellation_token.is_cancelled():
                if stopped_at is None:
                    _stop(client, session_id)
                    stopped_at = time.monotonic()
                elif time.monotonic() - stopped_at > STOP_WAIT_S:
                    manager.cancelled("cancelled")
                    raise errors.CancellationError(
                        f"training cancelled; the host did not confirm within {STOP_WAIT_S:.0f} s"
                    )
            time.sleep(POLL_INTERVAL_S)  # a library call in the caller's thread, not a loop
        payload = client.result(session_id)
    if payload["status"] == "cancelled":
        manager.cancelled(payload.get("error") or "cancelled")
        raise errors.CancellationError(payload.get("error") or "training cancelled on the host")
    if payload["status"] == "failed":
        message = f"on the training host: {payload.get('error')}"
        manager.fail(message)
        raise _error_class(payload.get("error_type"))(message)
    try:
        result = save_host_result(payload, storage)
    except ValueError as exc:
        raise errors.TrainingError(f"the host's model could not be saved here: {exc}") from exc
    metadata = dict(result.get("metadata") or {})
    metadata.update(execution_mode="host", host_url=host_url, host_session_id=session_id)
    result["metadata"] = metadata
    manager.complete()
    return result


def _stop(client: Any, session_id: str) -> None:
    from ktrdr.runs.host_client import HostServiceError

    try:
        client.stop(session_id)
    except HostServiceError as exc:
        if exc.status_code != 409:  # 409: it ended meanwhile, and the loop will see how
            raise


def _error_class(name: object) -> type[errors.KtrdrError]:
    known: dict[str, type[errors.KtrdrError]] = {
        "StrategyConfigError": errors.StrategyConfigError,
        "DataError": errors.DataError,
        "ModelStorageError": errors.ModelStorageError,
        "CancellationError": errors.CancellationError,
    }
    return known.get(str(name), errors.TrainingError)
