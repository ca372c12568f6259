from __future__ import annotations

import hashlib
import io
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ktrdr.store import received
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.received import (
    ArtifactRefused,
    receive_artifact,
    save_received,
    seal,
)
from tests.unit.store.test_model_storage import artifact

pytestmark = pytest.mark.unit


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def test_sealed_bytes_come_back_as_the_same_model_and_save(tmp_path: Path) -> None:
    model = artifact()
    sealed = seal(model.to_bytes())
    assert sealed.sha256 == hashlib.sha256(sealed.data).hexdigest()
    back = receive_artifact(sealed)
    assert back.manifest == model.manifest
    assert all(torch.equal(back.state_dict[k], v) for k, v in model.state_dict.items())
    saved = save_received(sealed, ModelStorage(tmp_path))
    assert saved.model_id == "demo/EURUSD_1h_v1"
    loaded = ModelStorage(tmp_path).load(saved.model_id)
    assert {k: v for k, v in loaded.manifest.items() if k != "model_id"} == model.manifest


@pytest.mark.parametrize("at", [0, 100, -1])
def test_one_altered_byte_anywhere_is_refused_before_loading(tmp_path: Path, at: int) -> None:
    sealed = seal(artifact().to_bytes())
    tampered = replace(sealed, data=_flip(sealed.data, at % len(sealed.data)))
    with pytest.raises(ArtifactRefused, match="sha256 does not match"):
        save_received(tampered, ModelStorage(tmp_path))
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_truncated_and_oversized_bytes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    sealed = seal(artifact().to_bytes())
    with pytest.raises(ArtifactRefused, match=r"not the \d+ it was sent as"):
        receive_artifact(replace(sealed, data=sealed.data[:-10]))
    monkeypatch.setattr(received, "MAX_ARTIFACT_BYTES", len(sealed.data) - 1)
    with pytest.raises(ArtifactRefused, match=r"over the \d+-byte limit"):
        receive_artifact(sealed)


def test_bytes_that_are_no_artifact_are_refused_even_with_a_matching_hash() -> None:
    with pytest.raises(ArtifactRefused, match="not a readable model artifact"):
        receive_artifact(seal(b"not a model at all"))
    buffer = io.BytesIO()
    torch.save({"format_version": 1, "meta": "{}", "state_dict": {}}, buffer)
    with pytest.raises(ArtifactRefused, match="incomplete"):
        receive_artifact(seal(buffer.getvalue()))


def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    buffer = io.BytesIO()
    torch.save({"meta": Payload()}, buffer)
    with pytest.raises(ArtifactRefused, match="not a readable model artifact"):
        receive_artifact(seal(buffer.getvalue()))
    assert not marker.exists()


def test_weights_that_do_not_fit_their_architecture_are_refused() -> None:
    broken = artifact()
    key = next(iter(broken.state_dict))
    broken.state_dict[key] = torch.zeros(3, 3)
    with pytest.raises(ArtifactRefused, match="do not fit the architecture"):
        receive_artifact(seal(broken.to_bytes()))
    missing = artifact()
    missing.state_dict.pop(next(iter(missing.state_dict)))
    with pytest.raises(ArtifactRefused, match="do not fit the architecture"):
        receive_artifact(seal(missing.to_bytes()))


def test_feature_names_that_do_not_match_the_inputs_are_refused() -> None:
    model = artifact()
    manifest = {**model.manifest, "feature_names": model.manifest["feature_names"][:-1]}
    with pytest.raises(ArtifactRefused, match="feature names"):
        receive_artifact(seal(replace(model, manifest=manifest).to_bytes()))


def test_a_refusal_is_a_model_storage_error_for_callers_that_catch_those() -> None:
    from ktrdr.errors import ModelStorageError

    assert issubclass(ArtifactRefused, ModelStorageError)
