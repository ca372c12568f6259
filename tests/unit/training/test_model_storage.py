from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from ktrdr.errors import ModelStorageError
from ktrdr.training.feature_scaling import ScalerParams
from ktrdr.training.model_artifact import FORMAT_VERSION, ModelArtifact, state_dict_digest
from ktrdr.training.model_storage import ModelStorage

pytestmark = pytest.mark.unit


def artifact(
    name: str = "demo",
    symbols: tuple[str, ...] = ("EURUSD",),
    timeframes: tuple[str, ...] = ("1h",),
    width: int = 4,
    seed: int = 0,
) -> ModelArtifact:
    generator = torch.Generator().manual_seed(seed)
    state = {"0.weight": torch.randn(3, width, generator=generator), "0.bias": torch.zeros(3)}
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "symbols": list(symbols),
        "timeframes": list(timeframes),
        "feature_names": ["a"] * width,
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    return ModelArtifact(
        state_dict=state,
        architecture={
            "type": "mlp",
            "input_dim": width,
            "hidden_layers": [2],
            "activation": "relu",
            "dropout": 0.0,
        },
        manifest=manifest,
        scaler=ScalerParams(("a",), (0.5,), (2.0,)),
        metrics={"test_metrics": {"accuracy": 0.6, "baseline_accuracy": 0.4}},
        config={"name": name, "training": {"epochs": 3}},
    )


def test_bytes_round_trip_and_corruption() -> None:
    original = artifact()
    data = original.to_bytes()
    restored = ModelArtifact.from_bytes(data)
    assert state_dict_digest(restored.state_dict) == state_dict_digest(original.state_dict)
    assert restored.manifest == original.manifest and restored.scaler == original.scaler
    for broken in (data[: len(data) // 2], b"not a model", data[:-50] + b"\x00" * 50):
        with pytest.raises(ModelStorageError):
            ModelArtifact.from_bytes(broken)


def test_layout_versions_and_latest(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    first = storage.save_model(artifact())
    second = storage.save_model(artifact(symbols=("EURGBP", "USDCAD"), timeframes=("1h", "4h")))
    assert first.path == tmp_path / "demo" / "EURUSD_1h_v1"
    assert second.path.name == "EURGBP-USDCAD_1h-4h_v2" and second.version == 2
    assert second.model_id == "demo/EURGBP-USDCAD_1h-4h_v2"
    assert os.readlink(tmp_path / "demo" / "latest") == "EURGBP-USDCAD_1h-4h_v2"
    assert sorted(p.name for p in first.path.iterdir()) == [
        "config.yaml",
        "manifest.json",
        "metrics.json",
        "model.pt",
        "scaler.json",
    ]
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.pt", "scaler.json", "metrics.json", "config.yaml"}
    listed = storage.list_models()
    assert [m.name for m in listed] == ["EURUSD_1h_v1", "EURGBP-USDCAD_1h-4h_v2"]
    assert [m.is_latest for m in listed] == [False, True]
    assert listed[0].test_accuracy == 0.6
    loaded = storage.load("demo/latest")
    assert loaded.manifest["symbols"] == ["EURGBP", "USDCAD"]


def test_models_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_MODELS_DIR", str(tmp_path / "env"))
    saved = ModelStorage().save_model(artifact())
    assert saved.path.is_relative_to(tmp_path / "env")


def test_round_trip_through_the_store_is_exact(tmp_path: Path) -> None:
    original = artifact(width=6, seed=4)
    loaded = ModelStorage(tmp_path).load(ModelStorage(tmp_path).save_model(original).path)
    assert state_dict_digest(loaded.state_dict) == state_dict_digest(original.state_dict)
    assert loaded.scaler == original.scaler and loaded.config == original.config
    assert loaded.metrics == original.metrics


@pytest.mark.parametrize("damage", ["tamper", "truncate", "delete"])
def test_damaged_model_file_is_refused(tmp_path: Path, damage: str) -> None:
    saved = ModelStorage(tmp_path).save_model(artifact())
    model_file = saved.path / "model.pt"
    data = model_file.read_bytes()
    if damage == "tamper":
        model_file.write_bytes(data[:-40] + bytes(40))
    elif damage == "truncate":
        model_file.write_bytes(data[: len(data) // 3])
    else:
        model_file.unlink()
    with pytest.raises(ModelStorageError, match=r"model\.pt"):
        ModelStorage(tmp_path).load(saved.path)


def test_future_format_version_is_refused(tmp_path: Path) -> None:
    saved = ModelStorage(tmp_path).save_model(artifact())
    manifest_file = saved.path / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(ModelStorageError, match=r"newer than this ktrdr reads.*upgrade"):
        ModelStorage(tmp_path).load(saved.path)


def test_unknown_ids_and_path_tricks(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    storage.save_model(artifact())
    for bad in ("demo/../../etc", "nope/latest", "demo/EURUSD_1h_v9", "../x"):
        with pytest.raises(ModelStorageError, match="no model at"):
            storage.load(bad)
    with pytest.raises(ModelStorageError, match="invalid strategy name"):
        storage.save_model(artifact(name="../evil"))


def test_delete_moves_latest(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    storage.save_model(artifact())
    second = storage.save_model(artifact())
    storage.delete_model(second.model_id)
    assert os.readlink(tmp_path / "demo" / "latest") == "EURUSD_1h_v1"
    storage.delete_model("demo/latest")
    assert not (tmp_path / "demo" / "latest").is_symlink()
    assert storage.list_models() == []


def test_concurrent_saves_get_distinct_versions(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(storage.save_model(artifact())))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.version for r in results) == list(range(1, 9))
    assert len({r.path for r in results}) == 8


_SAVE_FOREVER = textwrap.dedent("""
    import sys, torch
    from ktrdr.training.model_storage import ModelStorage
    from tests.unit.training.test_model_storage import artifact
    big = artifact(width=4_000_000)  # ~48 MB of weights: a save takes a while
    storage = ModelStorage(sys.argv[1])
    while True:
        storage.save_model(big)
""")


def test_a_crash_during_save_leaves_no_visible_half_version(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    storage.save_model(artifact())  # a complete v1 for latest to point at
    child = subprocess.Popen(
        [sys.executable, "-c", _SAVE_FOREVER, str(tmp_path)],
        cwd=Path(__file__).resolve().parents[3],
    )
    folder = tmp_path / "demo"
    try:
        deadline = time.monotonic() + 60
        while not list(folder.glob(".tmp-*")) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert list(folder.glob(".tmp-*")), "the child never started a save"
        time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # Every visible version is complete and verifies; latest points to one of them.
    for info in storage.list_models("demo"):
        storage.load(info.path)
    latest = storage.load("demo/latest")
    assert latest.manifest["symbols"] == ["EURUSD"]
    # The next save clears the leftovers and continues the numbering.
    saved = storage.save_model(artifact())
    assert not list(folder.glob(".tmp-*"))
    assert saved.version == max(i.version for i in storage.list_models("demo"))
