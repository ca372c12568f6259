from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.runs.host_backend import outcome_from_payload, strategy_text
from ktrdr.runs.transfer import encode_artifact
from ktrdr.store.received import receive_artifact, seal
from tests.unit.store.test_model_storage import artifact

pytestmark = pytest.mark.unit


def test_a_completed_payload_gives_the_sealed_model_to_check() -> None:
    model = artifact()
    sealed = seal(model.to_bytes())
    payload = {
        "status": "completed",
        "result": {"success": True, "model_path": None},
        "artifact": encode_artifact(sealed).model_dump(),
    }
    outcome = outcome_from_payload(payload)
    assert outcome.status == "completed" and outcome.result == payload["result"]
    assert outcome.artifact == sealed
    assert receive_artifact(outcome.artifact).manifest == model.manifest


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"status": "completed", "result": {}}, "holds no model"),
        ({"status": "completed", "artifact": {"x": 1}}, "holds no model"),
        ({"status": "running"}, "no outcome"),
        ({}, "no outcome"),
    ],
)
def test_a_payload_without_a_model_is_a_failed_outcome(payload: dict, message: str) -> None:
    outcome = outcome_from_payload(payload)
    assert outcome.status == "failed" and message in (outcome.error or "")
    assert outcome.artifact is None


def test_an_artifact_that_does_not_decode_is_refused_with_the_reason() -> None:
    good = encode_artifact(seal(artifact().to_bytes())).model_dump()
    outcome = outcome_from_payload(
        {"status": "completed", "result": {}, "artifact": {**good, "data": "!!"}}
    )
    assert outcome.status == "failed" and outcome.error_type == "ModelStorageError"
    assert "refused" in (outcome.error or "") and "base64" in (outcome.error or "")


def test_a_failed_or_cancelled_session_keeps_what_the_host_said() -> None:
    failed = outcome_from_payload(
        {"status": "failed", "error": "no bars for XYZ", "error_type": "DataError"}
    )
    assert (failed.status, failed.error, failed.error_type) == (
        "failed",
        "no bars for XYZ",
        "DataError",
    )
    assert outcome_from_payload({"status": "cancelled"}).status == "cancelled"


def test_a_strategy_dict_is_sent_in_its_own_key_order(tmp_path: Path) -> None:
    text = strategy_text({"name": "x", "fuzzy_sets": {"rsi": {"oversold": 1, "neutral": 2}}})
    assert text.index("oversold") < text.index("neutral")
    path = tmp_path / "s.yaml"
    path.write_text("name: from-file\n")
    assert strategy_text(path) == "name: from-file\n"
