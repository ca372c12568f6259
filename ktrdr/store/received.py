"""The one way artifact bytes from another process become a model: checked, then saved.

A worker process, a Ray task or the training host sends ``ModelArtifact.to_bytes()`` with the
sha256 it computed right after training. Before anything is saved or evaluated the receiver
checks, in order: the size, the sha256, the torch archive's records before they are unpacked,
that the bytes load with ``weights_only=True``, and then the model itself
(``artifact_checks.check_artifact``: manifest, the request it answers, strict loading, finite
weights). ``ArtifactRefused`` says which check failed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ktrdr.errors import ModelStorageError
from ktrdr.store.archive import MAX_ARTIFACT_BYTES
from ktrdr.store.artifact_checks import Expected, check_artifact
from ktrdr.store.model_artifact import ModelArtifact
from ktrdr.store.model_storage import ModelStorage, SavedModel


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


def receive_artifact(sealed: SealedArtifact, expected: Expected | None = None) -> ModelArtifact:
    """The checked ModelArtifact in ``sealed``, a model of exactly ``expected`` when given.

    Raises ArtifactRefused naming the failed check: too large, size or sha256 not as sent
    (altered or truncated on the way), not a loadable artifact, or a model that fails
    ``check_artifact`` (another strategy, symbol or timeframe than asked for, an invalid or
    path-like name, weights that do not fit the architecture, NaN weights).
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
        check_artifact(artifact, "the model", expected)
    except ModelStorageError as exc:
        raise ArtifactRefused(str(exc)) from exc
    return artifact


def save_received(
    sealed: SealedArtifact, storage: ModelStorage, expected: Expected | None = None
) -> SavedModel:
    """Check ``sealed`` (``receive_artifact``) and save it as the strategy's next version.

    Raises ArtifactRefused (nothing saved) or the store's ModelStorageError.
    """
    return storage.save_model(receive_artifact(sealed, expected))
