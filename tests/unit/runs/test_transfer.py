from __future__ import annotations

import base64
import gzip
import hashlib

import pytest
from pydantic import ValidationError

from ktrdr.runs.transfer import MAX_ARTIFACT_BYTES, decode_artifact, encode_artifact
from ktrdr.store.received import ArtifactRefused, receive_artifact, seal

pytestmark = pytest.mark.unit


def test_round_trip_and_compression() -> None:
    data = bytes(range(256)) * 400
    sealed = seal(data)
    payload = encode_artifact(sealed)
    assert payload.size == len(data) and len(payload.data) < len(data) / 10
    assert payload.sha256 == sealed.sha256  # the sender's hash travels, not a new one
    assert decode_artifact(payload.model_dump()) == sealed


def test_a_hash_that_does_not_match_is_caught_on_receipt() -> None:
    payload = encode_artifact(seal(b"model bytes" * 100)).model_dump()
    sealed = decode_artifact({**payload, "sha256": "0" * 64})
    with pytest.raises(ArtifactRefused, match="sha256 does not match"):
        receive_artifact(sealed)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": 10}, "inflates past the 10 bytes it declares"),
        ({"data": "not base64!"}, "not valid base64"),
        ({"data": base64.b64encode(b"plain, not gzip").decode()}, "not valid gzip"),
    ],
)
def test_a_payload_that_does_not_verify_is_refused(change: dict, message: str) -> None:
    payload = encode_artifact(seal(b"model bytes" * 100)).model_dump()
    with pytest.raises(ValueError, match=message):
        decode_artifact({**payload, **change})


def test_a_payload_that_lies_about_its_size_is_not_inflated() -> None:
    bomb = b"\0" * (8 * 2**20)
    payload = encode_artifact(seal(bomb)).model_dump()
    payload["size"] = 1000  # decompression stops just past the declared size
    with pytest.raises(ValueError, match="inflates past the 1000 bytes it declares"):
        decode_artifact(payload)
    truncated = {**encode_artifact(seal(b"x" * 5000)).model_dump()}
    truncated["data"] = base64.b64encode(gzip.compress(b"x" * 5000)[:-12]).decode()
    with pytest.raises(ValueError, match="cut short: its gzip stream ends after"):
        decode_artifact(truncated)
    shorter = encode_artifact(seal(b"x" * 5000)).model_dump()
    shorter["size"] = 6000  # a whole stream, smaller than it says
    with pytest.raises(ValueError, match="is 5000 bytes, not the 6000 it declares"):
        decode_artifact(shorter)


def test_the_envelope_is_validated() -> None:
    good = encode_artifact(seal(b"abc")).model_dump()
    for bad in (
        {**good, "encoding": "zip"},
        {**good, "size": MAX_ARTIFACT_BYTES + 1},
        {**good, "sha256": "xyz"},
        {**good, "extra": 1},
    ):
        with pytest.raises(ValidationError):
            decode_artifact(bad)
    assert good["sha256"] == hashlib.sha256(b"abc").hexdigest()
