"""The one way artifact bytes from another process become a model: checked, then saved.

A worker process, a Ray task or the training host sends ``ModelArtifact.to_bytes()`` with the
sha256 it computed right after training. Before anything is saved or evaluated the receiver
checks, in order: the size, the sha256, that the bytes load with ``weights_only=True``, that the
weights fit the architecture they claim (a strict load into a freshly built network), and that
the manifest names one feature per network input. ``ArtifactRefused`` says which check failed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ktrdr.errors import ModelStorageError
from ktrdr.neural.mlp import build_mlp
from ktrdr.store.model_artifact import ModelArtifact
from ktrdr.store.model_storage import ModelStorage, SavedModel

# A trained ktrdr model is kilobytes to a few MiB; anything far larger is not one.
MAX_ARTIFACT_BYTES = 64 * 2**20


class ArtifactRefused(ModelStorageError):
    """Artifact bytes that failed a check on receipt; nothing was saved."""


@dataclass(frozen=True)
class SealedArtifact:
    """Artifact bytes with the sha256 and size the sender computed, to travel together."""

    data: bytes
    sha256: str
    size: int


def seal(data: bytes) -> SealedArtifact:
    """``data`` (``ModelArtifact.to_bytes()``) with its sha256 and size, for the receiver."""
    return SealedArtifact(data=data, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def receive_artifact(sealed: SealedArtifact) -> ModelArtifact:
    """The checked ModelArtifact in ``sealed``.

    Raises ArtifactRefused naming the failed check: too large, size or sha256 not as sent
    (altered or truncated on the way), not a loadable artifact, weights that do not fit the
    architecture, or feature names that do not match the network's inputs.
    """
    data = sealed.data
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactRefused(
            f"the artifact is {len(data)} bytes, over the {MAX_ARTIFACT_BYTES}-byte limit"
        )
    if len(data) != sealed.size:
        raise ArtifactRefused(
            f"the artifact is {len(data)} bytes, not the {sealed.size} it was sent as"
        )
    if hashlib.sha256(data).hexdigest() != sealed.sha256:
        raise ArtifactRefused("the artifact's sha256 does not match: it was altered on the way")
    try:
        artifact = ModelArtifact.from_bytes(data)
    except ModelStorageError as exc:
        raise ArtifactRefused(str(exc)) from exc
    _check_architecture(artifact)
    return artifact


def save_received(sealed: SealedArtifact, storage: ModelStorage) -> SavedModel:
    """Check ``sealed`` (``receive_artifact``) and save it as the strategy's next version.

    Raises ArtifactRefused (nothing saved) or the store's ModelStorageError.
    """
    return storage.save_model(receive_artifact(sealed))


def _check_architecture(artifact: ModelArtifact) -> None:
    try:
        network = build_mlp(artifact.architecture)
        network.load_state_dict(artifact.state_dict, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactRefused(f"the model's weights do not fit its architecture ({exc})") from exc
    manifest = artifact.manifest if isinstance(artifact.manifest, dict) else {}
    names = manifest.get("feature_names")
    if not isinstance(names, list) or len(names) != artifact.architecture.get("input_dim"):
        raise ArtifactRefused("the model's feature names do not match its number of inputs")
