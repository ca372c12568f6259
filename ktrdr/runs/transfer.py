"""How a trained model travels from the host to the backend (callback body or pulled result).

The artifact bytes (``ModelArtifact.to_bytes()``) are gzip-compressed and base64-encoded, with
the sha256 and length of the uncompressed bytes so the receiver can verify them before loading.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import zlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# A trained ktrdr model is kilobytes to a few MiB; anything far larger is not one.
MAX_ARTIFACT_BYTES = 64 * 2**20


class ArtifactPayload(BaseModel):
    """A model artifact in transit."""

    model_config = ConfigDict(extra="forbid")

    encoding: str = Field(pattern=r"^gzip\+base64$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, le=MAX_ARTIFACT_BYTES)
    data: str


def encode_artifact(artifact: bytes) -> ArtifactPayload:
    """The transfer form of ``artifact`` (``ModelArtifact.to_bytes()``)."""
    return ArtifactPayload(
        encoding="gzip+base64",
        sha256=hashlib.sha256(artifact).hexdigest(),
        size=len(artifact),
        data=base64.b64encode(gzip.compress(artifact, compresslevel=6)).decode("ascii"),
    )


def decode_artifact(payload: ArtifactPayload | dict[str, Any]) -> bytes:
    """The verified artifact bytes; ValueError saying what is wrong otherwise."""
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
    if len(artifact) != payload.size or not decompressor.eof:
        raise ValueError(f"artifact is not {payload.size} bytes once decompressed")
    if hashlib.sha256(artifact).hexdigest() != payload.sha256:
        raise ValueError("artifact sha256 does not match: the payload was altered or truncated")
    return artifact
