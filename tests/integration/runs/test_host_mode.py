"""run_on_host against a real host service: the model is saved here through the one save path,
a model altered on the way is refused with nothing saved, and a cancel stops the session."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.errors import CancellationError, ModelStorageError
from ktrdr.runs import host_backend
from ktrdr.runs.host_mode import run_on_host
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.received import SealedArtifact
from ktrdr.training.run_spec import RunSpec, build_run_spec
from tests.conftest import STRATEGIES_DIR
from tests.services import Service

pytestmark = [pytest.mark.integration, pytest.mark.host_service]


def _spec(models: Path, epochs: int = 2) -> RunSpec:
    return build_run_spec(
        STRATEGIES_DIR / "neuro_mean_reversion.yaml",
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-03-31",
        overrides={"training.epochs": epochs, "training.early_stopping.patience": epochs},
        threads=1,
        models_dir=models,
    )


def test_the_hosts_model_is_saved_here_and_reloads(host: Service, tmp_path: Path) -> None:
    manager = GenericProgressManager()
    result = run_on_host(_spec(tmp_path / "m"), host_url=host.url, progress_manager=manager)
    assert result["metadata"]["execution_mode"] == "host"
    assert result["metadata"]["host_url"] == host.url
    assert manager.snapshot().status == "completed" and manager.snapshot().percentage == 100.0
    [saved] = ModelStorage(tmp_path / "m").list_models()
    assert saved.model_id == result["model_id"]
    loaded = ModelStorage(tmp_path / "m").load(result["model_id"])
    assert loaded.manifest["feature_names"] == result["feature_names"]


def test_a_model_altered_on_the_way_is_refused_and_nothing_is_saved(
    host: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decode = host_backend.decode_artifact

    def altered(payload: Any) -> SealedArtifact:
        sealed = decode(payload)
        middle = len(sealed.data) // 2
        data = sealed.data[:middle] + bytes([sealed.data[middle] ^ 1]) + sealed.data[middle + 1 :]
        return replace(sealed, data=data)

    monkeypatch.setattr(host_backend, "decode_artifact", altered)
    with pytest.raises(ModelStorageError, match="sha256 does not match"):
        run_on_host(_spec(tmp_path / "m"), host_url=host.url)
    assert not (tmp_path / "m").exists() or ModelStorage(tmp_path / "m").list_models() == []


def test_cancelling_stops_the_host_session(host: Service, tmp_path: Path) -> None:
    token = ThreadingCancellationToken()
    manager = GenericProgressManager()
    training = threading.Event()
    original = manager.mirror

    def mirror(snapshot: Any) -> None:
        original(snapshot)
        if snapshot.get("step_number") == 7:
            training.set()

    manager.mirror = mirror  # type: ignore[method-assign]
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            run_on_host(
                _spec(tmp_path / "m", epochs=500),
                host_url=host.url,
                progress_manager=manager,
                cancellation_token=token,
            )
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert training.wait(120), "the host never reached the training step"
    token.cancel("enough")
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), CancellationError), outcome
    assert not (tmp_path / "m").exists() or ModelStorage(tmp_path / "m").list_models() == []
