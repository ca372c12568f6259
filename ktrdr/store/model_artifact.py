"""ModelArtifact: everything a trained model is, as plain data.
See docs/architecture.md: the artifact and the store.

``to_bytes``/``from_bytes`` is the single serialisation, used by the store and by the host
service's callback. It is a torch file holding only tensors and one JSON string, so it loads with
``weights_only=True``: loading never runs code from the file.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import torch

from ktrdr.errors import ModelStorageError
from ktrdr.store.archive import check_torch_archive
from ktrdr.store.scaler import ScalerParams

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelArtifact:
    """CPU state dict, architecture spec, manifest, scaler, metrics and resolved strategy."""

    state_dict: dict[str, torch.Tensor]
    architecture: dict[str, Any]
    manifest: dict[str, Any]
    scaler: ScalerParams | None
    metrics: dict[str, Any]
    config: dict[str, Any]

    @property
    def strategy_name(self) -> str:
        return str(self.config["name"])

    def to_bytes(self) -> bytes:
        """The artifact as bytes (see the module docstring)."""
        meta = {
            "architecture": self.architecture,
            "manifest": self.manifest,
            "scaler": None if self.scaler is None else self.scaler.to_dict(),
            "metrics": self.metrics,
            "config": self.config,
        }
        buffer = io.BytesIO()
        torch.save(
            {
                "format_version": FORMAT_VERSION,
                "state_dict": {
                    k: v.detach().cpu().contiguous() for k, v in self.state_dict.items()
                },
                # Key order carries meaning (fuzzy sets, hence feature order): never sorted.
                "meta": json.dumps(meta),
            },
            buffer,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelArtifact:
        """Rebuild an artifact; ModelStorageError if the bytes are not a valid artifact."""
        check_torch_archive(io.BytesIO(data), "the artifact")
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, tampered or not a torch file at all
            raise ModelStorageError(f"not a readable model artifact ({exc})") from exc
        if not isinstance(payload, dict) or "meta" not in payload:
            raise ModelStorageError("not a ktrdr model artifact")
        version = payload.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelStorageError(
                f"artifact format_version {version!r} is newer than this ktrdr reads "
                f"({FORMAT_VERSION}); upgrade ktrdr"
            )
        try:
            meta = json.loads(payload["meta"])
            state = payload["state_dict"]
            scaler = ScalerParams.from_dict(meta["scaler"]) if meta["scaler"] else None
            return cls(
                state_dict=dict(state),
                architecture=meta["architecture"],
                manifest=meta["manifest"],
                scaler=scaler,
                metrics=meta["metrics"],
                config=meta["config"],
            )
        except Exception as exc:
            raise ModelStorageError(f"model artifact is incomplete ({exc!r})") from exc


def state_dict_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' bytes in sorted key order: equal digests, identical weights."""
    import hashlib

    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(key.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()
