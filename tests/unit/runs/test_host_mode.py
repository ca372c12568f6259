from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ktrdr.runs.host_mode import check_host_artifact, save_host_result, strategy_text
from ktrdr.runs.transfer import encode_artifact
from ktrdr.store.model_storage import ModelStorage
from tests.unit.store.test_model_storage import artifact

pytestmark = pytest.mark.unit


def test_a_valid_host_result_is_saved_with_its_location(tmp_path: Path) -> None:
    payload = {
        "status": "completed",
        "result": {"success": True, "model_path": None},
        "artifact": encode_artifact(artifact().to_bytes()).model_dump(),
    }
    result = save_host_result(payload, ModelStorage(tmp_path))
    assert result["model_id"] == "demo/EURUSD_1h_v1" and Path(result["model_path"]).is_dir()
    assert ModelStorage(tmp_path).load(result["model_id"]).manifest["symbols"] == ["EURUSD"]


def test_weights_that_do_not_fit_the_architecture_are_refused(tmp_path: Path) -> None:
    broken = artifact()
    key = next(iter(broken.state_dict))
    broken.state_dict[key] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="do not match its architecture"):
        check_host_artifact(broken.to_bytes())
    with pytest.raises(ValueError, match="not a readable model artifact"):
        check_host_artifact(b"not a model")
    payload = {
        "status": "completed",
        "result": {},
        "artifact": encode_artifact(broken.to_bytes()).model_dump(),
    }
    with pytest.raises(ValueError):
        save_host_result(payload, ModelStorage(tmp_path))
    with pytest.raises(ValueError, match="no completed training"):
        save_host_result({"status": "failed"}, ModelStorage(tmp_path))
    assert not any(tmp_path.iterdir())  # nothing half-saved


def test_a_strategy_dict_is_sent_in_its_own_key_order(tmp_path: Path) -> None:
    text = strategy_text({"name": "x", "fuzzy_sets": {"rsi": {"oversold": 1, "neutral": 2}}})
    assert text.index("oversold") < text.index("neutral")
    path = tmp_path / "s.yaml"
    path.write_text("name: from-file\n")
    assert strategy_text(path) == "name: from-file\n"
