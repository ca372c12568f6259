"""How a trained model travels from the host to the backend (callback body or pulled result).

The sealed artifact bytes (``ktrdr.store.received``) are gzip-compressed and base64-encoded,
with the sha256 and length the worker computed for the uncompressed bytes; the receiver checks
them (``receive_artifact``) before anything is loaded or saved.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ktrdr.store.archive import MAX_ARTIFACT_BYTES
from ktrdr.store.received import SealedArtifact


class ArtifactPayload(BaseModel):
    """A model artifact in transit."""

    model_config = ConfigDict(extra="forbid")

    encoding: str = Field(pattern=r"^gzip\+base64$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, le=MAX_ARTIFACT_BYTES)
    data: str


def encode_artifact(sealed: SealedArtifact) -> ArtifactPayload:
    """The transfer form of ``sealed``, keeping the sha256 its worker computed."""
    return ArtifactPayload(
        encoding="gzip+base64",
        sha256=sealed.sha256,
        size=sealed.size,
        data=base64.b64encode(gzip.compress(sealed.data, compresslevel=6)).decode("ascii"),
    )


def decode_artifact(payload: ArtifactPayload | dict[str, Any]) -> SealedArtifact:
    """The sealed bytes in ``payload``, to be checked with ``receive_artifact``; ValueError when
    the payload is malformed, not base64 or gzip, or decompresses to another size (never more
    than the size it declares is decompressed)."""
    if not isinstance(payload, ArtifactPayload):
        payload = ArtifactPayload.model_validate(payload)
    try:
        compressed = base64.b64decode(payload.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"artifact data is not valid base64 ({exc})") from exc
    try:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
        artifact = decompressor.decompress(compressed, payload.size + 1)
    except zlib.error as exc:
        raise ValueError(f"artifact data is not valid gzip ({exc})") from exc
    if len(artifact) > payload.size:
        raise ValueError(f"artifact inflates past the {payload.size} bytes it declares")
    if not decompressor.eof:
        raise ValueError(
            f"artifact data is cut short: its gzip stream ends after {len(artifact)} of the "
            f"{payload.size} bytes it declares"
        )
    if len(artifact) != payload.size:
        raise ValueError(f"artifact is {len(artifact)} bytes, not the {payload.size} it declares")
    return SealedArtifact(data=artifact, sha256=payload.sha256, size=payload.size)
