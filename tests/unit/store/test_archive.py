"""Torch archives that would inflate to gigabytes, or hold NaN weights: refused before torch
unpacks them, on receipt and when a saved version loads."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from ktrdr.errors import ModelStorageError
from ktrdr.store import archive
from ktrdr.store.archive import MAX_ARTIFACT_BYTES, check_torch_archive
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.received import ArtifactRefused, receive_artifact, seal
from tests.unit.store.test_model_storage import artifact

pytestmark = pytest.mark.unit


def _zip(records: dict[str, bytes], compression: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in records.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_deflate_bomb_is_refused_from_its_header_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    # 80 MiB of zeros deflate to about 80 KB: over the cap once inflated.
    bomb = _zip({"archive/data/0": bytes(80 * 2**20)}, zipfile.ZIP_DEFLATED)
    assert len(bomb) < 2**20 < MAX_ARTIFACT_BYTES

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("torch.load must not see it")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(ArtifactRefused, match="compressed records"):
        receive_artifact(seal(bomb))
    stored = _zip({"archive/data/0": b"x", "archive/data/1": b"y"}, zipfile.ZIP_STORED)
    monkeypatch.setattr(archive, "MAX_ARTIFACT_BYTES", 1)
    with pytest.raises(ModelStorageError, match="declares 2 bytes, over the 1-byte limit"):
        check_torch_archive(io.BytesIO(stored), "the artifact")
    with pytest.raises(ModelStorageError, match="not a readable model artifact"):
        check_torch_archive(io.BytesIO(b"PK not really"), "the artifact")


def _rewrite_weights(version: Path, data: bytes) -> None:
    """Replace model.pt and its hash in the manifest, as someone editing the store would."""
    (version / "model.pt").write_bytes(data)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["files"]["model.pt"] = hashlib.sha256(data).hexdigest()
    (version / "manifest.json").write_text(json.dumps(manifest))


def test_a_saved_model_pt_that_is_a_bomb_or_holds_nan_is_refused_on_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = ModelStorage(tmp_path)
    saved = storage.save_model(artifact())
    _rewrite_weights(saved.path, _zip({"archive/data/0": bytes(2**20)}, zipfile.ZIP_DEFLATED))
    with pytest.raises(ModelStorageError, match=r"model\.pt holds compressed records"):
        storage.load(saved.path)

    state = {k: torch.full_like(v, float("nan")) for k, v in artifact().state_dict.items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _rewrite_weights(saved.path, buffer.getvalue())
    with pytest.raises(ModelStorageError, match="NaN or infinite values"):
        storage.load(saved.path)
