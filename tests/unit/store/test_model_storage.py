from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from ktrdr.config import load_strategy_config
from ktrdr.config.features import feature_names
from ktrdr.errors import ModelStorageError
from ktrdr.neural.mlp import build_mlp, mlp_spec
from ktrdr.store import model_storage as model_storage_module
from ktrdr.store.manifest import build_manifest
from ktrdr.store.model_artifact import FORMAT_VERSION, ModelArtifact, state_dict_digest
from ktrdr.store.model_storage import ModelStorage, content_digest
from ktrdr.store.scaler import ScalerParams
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit


REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")


def artifact(
    name: str = "demo",
    symbols: tuple[str, ...] = ("EURUSD",),
    timeframes: tuple[str, ...] = ("1h",),
    hidden: tuple[int, ...] = (2,),
    seed: int = 0,
) -> ModelArtifact:
    """A small but complete artifact of the real strategy, as training would build it."""
    config = copy.deepcopy(REAL)
    config["name"] = name
    config["model"]["architecture"]["hidden_layers"] = list(hidden)
    names = feature_names(config, list(timeframes))
    spec = mlp_spec(len(names), config["model"]["architecture"])
    torch.manual_seed(seed)
    state = {k: v.detach().clone() for k, v in build_mlp(spec).state_dict().items()}
    count = len(names)
    manifest = build_manifest(
        strategy_config=config,
        architecture=spec,
        feature_names=names,
        symbols=list(symbols),
        timeframes=list(timeframes),
        boundaries={"train": {}, "validation": {}, "test": {}},
        class_counts={},
        fingerprint="0" * 64,
        scaled=True,
    )
    return ModelArtifact(
        state_dict=state,
        architecture=spec,
        manifest=manifest,
        scaler=ScalerParams(tuple(names), (0.5,) * count, (2.0,) * count),
        metrics={"test_metrics": {"accuracy": 0.6, "baseline_accuracy": 0.4}},
        config=config,
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


def test_an_artifact_sent_as_bytes_saves_and_loads_with_its_feature_order(tmp_path: Path) -> None:
    # The host sends artifacts as bytes; sorting the strategy's keys on the way reordered its
    # fuzzy sets (oversold, neutral, overbought), and with them the features, so the saved
    # version no longer loaded ("config.yaml and manifest.json describe different features").
    original = artifact()
    restored = ModelArtifact.from_bytes(original.to_bytes())
    assert list(restored.config["fuzzy_sets"]["rsi"]) == list(original.config["fuzzy_sets"]["rsi"])
    assert list(restored.config) == list(original.config)
    storage = ModelStorage(tmp_path)
    saved = storage.save_model(restored)
    assert (
        storage.load(saved.model_id).manifest["feature_names"]
        == (original.manifest["feature_names"])
    )


def test_layout_versions_and_latest(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    first = storage.save_model(artifact())
    second = storage.save_model(artifact(symbols=("EURGBP", "USDCAD"), timeframes=("1h", "4h")))
    third = storage.save_model(artifact())
    assert first.path == tmp_path / "demo" / "EURUSD_1h_v1"
    # Numbers count per symbol set: another set's save does not make EURUSD's second a v3.
    assert second.path.name == "EURGBP-USDCAD_1h-4h_v1" and second.version == 1
    assert second.model_id == "demo/EURGBP-USDCAD_1h-4h_v1"
    assert third.path.name == "EURUSD_1h_v2" and third.version == 2
    assert os.readlink(tmp_path / "demo" / "latest") == "EURUSD_1h_v2"
    assert os.readlink(tmp_path / "demo" / "EURUSD_1h_latest") == "EURUSD_1h_v2"
    assert os.readlink(tmp_path / "demo" / "EURGBP-USDCAD_1h-4h_latest") == (
        "EURGBP-USDCAD_1h-4h_v1"
    )
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
    assert [m.name for m in listed] == ["EURUSD_1h_v1", "EURGBP-USDCAD_1h-4h_v1", "EURUSD_1h_v2"]
    assert [m.is_latest for m in listed] == [False, False, True]
    assert [m.is_set_latest for m in listed] == [False, True, True]
    assert listed[0].test_accuracy == 0.6
    assert storage.load("demo/latest").manifest["symbols"] == ["EURUSD"]
    assert storage.load("demo/EURGBP-USDCAD_1h-4h_latest").manifest["symbols"] == [
        "EURGBP",
        "USDCAD",
    ]


def test_latest_for_a_symbol_is_the_newest_version_trained_on_it(tmp_path: Path) -> None:
    # One pointer per strategy handed a USDCAD model to "predict .../latest --symbol EURUSD".
    storage = ModelStorage(tmp_path)
    eurusd = storage.save_model(artifact())
    usdcad = storage.save_model(artifact(symbols=("USDCAD",)))
    assert storage.resolve("demo/latest") == usdcad.path
    assert storage.resolve("demo/latest", symbol="EURUSD") == eurusd.path
    assert storage.resolve("demo/latest", symbol="USDCAD") == usdcad.path
    # A version named outright is that version, whatever the symbol.
    assert storage.resolve(usdcad.model_id, symbol="EURUSD") == usdcad.path
    with pytest.raises(ModelStorageError) as never:
        storage.resolve("demo/latest", symbol="EURJPY")
    assert "no version of demo was trained on EURJPY" in str(never.value)
    assert "demo/EURUSD_1h_latest, demo/USDCAD_1h_latest" in str(never.value)
    storage.save_model(artifact(symbols=("EURUSD", "USDCAD")))
    with pytest.raises(ModelStorageError) as ambiguous:
        storage.resolve("demo/latest", symbol="EURUSD")
    assert "demo/latest is ambiguous for EURUSD: 2 symbol sets hold it" in str(ambiguous.value)
    assert "(demo/EURUSD-USDCAD_1h_latest, demo/EURUSD_1h_latest)" in str(ambiguous.value)


def test_a_symbol_with_a_dash_finds_its_own_set(tmp_path: Path) -> None:
    # A set's folder name joins symbols with "-": BTC-USD must not read as BTC and USD.
    storage = ModelStorage(tmp_path)
    crypto = storage.save_model(artifact(symbols=("BTC-USD",)))
    storage.save_model(artifact(symbols=("ETH_USD",)))
    assert storage.resolve("demo/latest", symbol="BTC-USD") == crypto.path
    assert storage.resolve("demo/latest", symbol="ETH_USD").name == "ETH_USD_1h_v1"
    with pytest.raises(ModelStorageError, match="no version of demo was trained on BTC"):
        storage.resolve("demo/latest", symbol="BTC")


def test_a_tampered_link_is_refused_when_a_symbol_chooses_the_version(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    storage.save_model(artifact())
    storage.save_model(artifact(symbols=("USDCAD",)))
    folder = tmp_path / "demo"
    for link in ("EURUSD_1h_latest", "latest"):
        (folder / link).unlink()
        (folder / link).symlink_to("/etc")
        with pytest.raises(ModelStorageError, match="refusing to follow it out of the model store"):
            storage.resolve("demo/latest", symbol="EURUSD")
        (folder / link).unlink()
        (folder / link).symlink_to("EURUSD_1h_v1")


def test_delete_moves_each_latest_within_its_own_set(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    storage.save_model(artifact())
    storage.save_model(artifact(symbols=("USDCAD",)))
    newest = storage.save_model(artifact())
    storage.delete_model(newest.model_id)
    folder = tmp_path / "demo"
    # The strategy's latest goes to the newest remaining version of any set, by creation.
    assert os.readlink(folder / "latest") == "USDCAD_1h_v1"
    assert os.readlink(folder / "EURUSD_1h_latest") == "EURUSD_1h_v1"
    storage.delete_model("demo/EURUSD_1h_latest")
    assert not (folder / "EURUSD_1h_latest").is_symlink()
    assert os.readlink(folder / "latest") == "USDCAD_1h_v1"


def test_models_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_MODELS_DIR", str(tmp_path / "env"))
    saved = ModelStorage().save_model(artifact())
    assert saved.path.is_relative_to(tmp_path / "env")


def test_round_trip_through_the_store_is_exact(tmp_path: Path) -> None:
    original = artifact(hidden=(6, 3), seed=4)
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
    from ktrdr.store.model_storage import ModelStorage
    from tests.unit.store.test_model_storage import artifact
    big = artifact(hidden=(100_000, 100))  # ~47 MB of weights: a save takes a while
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
        child.kill()  # SIGKILL: cannot be caught or ignored, whatever the runner set
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


def _edit_manifest(path: Path, change: Any) -> None:
    manifest_file = path / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    change(manifest)
    manifest_file.write_text(json.dumps(manifest))


def test_a_manifest_that_omits_a_file_its_fields_require_is_refused(tmp_path: Path) -> None:
    # Dropping scaler.json from the list used to load the model without its scaler.
    saved = ModelStorage(tmp_path).save_model(artifact())
    _edit_manifest(saved.path, lambda m: m["files"].pop("scaler.json"))
    with pytest.raises(ModelStorageError, match=r"files must list exactly.*missing scaler\.json"):
        ModelStorage(tmp_path).load(saved.path)
    _edit_manifest(saved.path, lambda m: m.update(scaled=False))
    with pytest.raises(ModelStorageError, match=r"scaler\.json exists but the manifest does not"):
        ModelStorage(tmp_path).load(saved.path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["architecture"].update(hidden_layers=[100_000, 100_000]), "10,002,300,003"),
        (lambda m: m["architecture"].update(hidden_layers=[5, 4]), "weight shapes"),
        (lambda m: m["architecture"].update(hidden_layers=[2] * 100), "hidden_layers"),
        (lambda m: m["architecture"].update(input_dim=7), "feature names but architecture"),
        (lambda m: m.update(seed="42"), "seed"),
        (lambda m: m.update(scaled=1), "scaled"),
        (lambda m: m.update(extra_key=1), "extra_key"),
        (lambda m: m.pop("feature_names"), "feature_names"),
        (lambda m: m.update(timeframes=["4h", "1h"]), "timeframes"),
        (lambda m: m["feature_names"].reverse(), "describe different features"),
    ],
)
def test_an_edited_manifest_is_refused_before_anything_is_allocated(
    tmp_path: Path, change: Any, message: str
) -> None:
    saved = ModelStorage(tmp_path).save_model(artifact())
    _edit_manifest(saved.path, change)
    with pytest.raises(ModelStorageError, match=message):
        ModelStorage(tmp_path).load(saved.path)


def test_a_latest_that_leads_out_of_the_store_is_refused(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path / "store")
    storage.save_model(artifact())
    elsewhere = ModelStorage(tmp_path / "elsewhere").save_model(artifact())
    latest = tmp_path / "store" / "demo" / "latest"
    latest.unlink()
    latest.symlink_to(elsewhere.path)
    for ref in ("demo/latest", str(latest)):
        with pytest.raises(ModelStorageError, match="refusing to follow it out of the model store"):
            storage.load(ref)


def test_folders_that_are_not_complete_versions_are_ignored(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    storage.save_model(artifact())
    (tmp_path / "demo" / "EURUSD_1h_v50").mkdir()  # empty: not a version
    assert [i.version for i in storage.list_models()] == [1]
    second = storage.save_model(artifact())
    assert second.version == 2  # the empty v50 does not bend the numbering
    with pytest.raises(ModelStorageError, match=r"no manifest\.json|without manifest\.json"):
        storage.load(tmp_path / "demo" / "EURUSD_1h_v50")


def test_one_bad_manifest_does_not_break_the_listing(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    first = storage.save_model(artifact())
    storage.save_model(artifact())
    (first.path / "manifest.json").write_text("[1, 2, 3]")
    infos = storage.list_models()
    assert [i.version for i in infos] == [1, 2]
    assert infos[0].error is not None and infos[1].error is None


def test_the_content_digest_tells_models_apart_and_sees_every_change(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path)
    first = storage.save_model(artifact(seed=1))
    second = storage.save_model(artifact(seed=2))
    assert len(first.content_digest) == 64 and first.content_digest != second.content_digest
    assert content_digest(first.path) == first.content_digest
    _edit_manifest(first.path, lambda m: m.update(created_at="2020-01-01T00:00:00+00:00"))
    assert content_digest(first.path) != first.content_digest


def test_pointing_latest_fails_then_the_new_version_is_removed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = ModelStorage(tmp_path)
    storage.save_model(artifact())

    real = model_storage_module._point_latest

    def broken(folder: Path, name: str, link: str = "latest") -> None:
        # The set's link moves first; the strategy's then fails: both must be put back.
        if link == "latest" and name == "EURUSD_1h_v2":
            raise OSError(28, "No space left on device")
        real(folder, name, link)

    monkeypatch.setattr(model_storage_module, "_point_latest", broken)
    with pytest.raises(ModelStorageError, match="the new version was removed again"):
        storage.save_model(artifact())
    assert sorted(p.name for p in (tmp_path / "demo").iterdir() if not p.name.startswith(".")) == [
        "EURUSD_1h_latest",
        "EURUSD_1h_v1",
        "latest",
    ]
    assert os.readlink(tmp_path / "demo" / "latest") == "EURUSD_1h_v1"
    assert os.readlink(tmp_path / "demo" / "EURUSD_1h_latest") == "EURUSD_1h_v1"


class _Payload:
    """Pickles to a call that would create a marker file: loading it must never run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_a_crafted_pickle_with_a_matching_hash_is_refused_on_both_load_paths(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "code-ran"
    saved = ModelStorage(tmp_path / "store").save_model(artifact())
    # The store path: model.pt replaced by a pickle that runs code, its hash written into the
    # manifest so that the hash check passes.
    torch.save({"0.weight": _Payload(marker)}, saved.path / "model.pt")
    digest = hashlib.sha256((saved.path / "model.pt").read_bytes()).hexdigest()
    _edit_manifest(saved.path, lambda m: m["files"].update({"model.pt": digest}))
    with pytest.raises(ModelStorageError, match="not a readable state dict"):
        ModelStorage(tmp_path / "store").load(saved.path)
    assert not marker.exists()
    # The bytes path (the host service's callback).
    buffer = io.BytesIO()
    torch.save(
        {"format_version": FORMAT_VERSION, "state_dict": _Payload(marker), "meta": "{}"}, buffer
    )
    with pytest.raises(ModelStorageError, match="not a readable model artifact"):
        ModelArtifact.from_bytes(buffer.getvalue())
    assert not marker.exists()


_SAVE_STAGES = [
    ("torch.save", 1),
    ("_write_text", 1),  # scaler.json
    ("_write_text", 2),  # metrics.json
    ("_write_text", 3),  # config.yaml
    ("_write_text", 4),  # manifest.json
    ("fsync_dir", 1),  # the temporary folder
    ("os.rename", 1),  # the version into place
    ("fsync_dir", 2),  # the strategy folder after the rename
    ("_point_latest", 1),
]


@pytest.mark.parametrize(("stage", "call"), _SAVE_STAGES, ids=[f"{s}#{n}" for s, n in _SAVE_STAGES])
def test_a_fault_at_any_stage_of_a_save_leaves_the_store_as_it_was(
    stage: str, call: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = ModelStorage(tmp_path)
    first = storage.save_model(artifact())
    before = sorted(p.name for p in (tmp_path / "demo").iterdir() if p.name != ".lock")
    owner, _, name = stage.rpartition(".")
    target: Any = {"torch": torch, "os": model_storage_module.os}.get(owner, model_storage_module)
    real = getattr(target, name)
    calls = {"n": 0}

    def faulty(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == call:
            raise OSError(5, f"injected fault in {stage}")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, faulty)
    with pytest.raises((OSError, ModelStorageError)):
        storage.save_model(artifact(seed=9))
    monkeypatch.undo()
    assert calls["n"] >= call, f"{stage} was called only {calls['n']} time(s)"
    after = sorted(p.name for p in (tmp_path / "demo").iterdir() if p.name != ".lock")
    assert after == before  # no new version, no leftover temporary folder or link
    assert os.readlink(tmp_path / "demo" / "latest") == first.path.name
    assert [i.version for i in storage.list_models()] == [1]
    storage.load("demo/latest")
    assert storage.save_model(artifact()).version == 2


@pytest.mark.parametrize("name", ["scaler.json", "metrics.json", "config.yaml", "model.pt"])
def test_every_hashed_file_is_checked_on_load(tmp_path: Path, name: str) -> None:
    saved = ModelStorage(tmp_path).save_model(artifact())
    path = saved.path / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, still the same length
    path.write_bytes(bytes(data))
    with pytest.raises(ModelStorageError, match=rf"{name}: sha256 does not match the manifest"):
        ModelStorage(tmp_path).load(saved.path)


def test_the_content_digest_covers_every_file_of_the_version(tmp_path: Path) -> None:
    saved = ModelStorage(tmp_path).save_model(artifact())
    listed = json.loads((saved.path / "manifest.json").read_text())["files"]
    assert {"model.pt", "scaler.json", "metrics.json", "config.yaml"} <= set(listed)
    for name in listed:
        path = saved.path / name
        original = path.read_bytes()
        path.write_bytes(original + b" ")
        assert content_digest(saved.path) != saved.content_digest, name
        path.write_bytes(original)
    assert content_digest(saved.path) == saved.content_digest


def test_a_version_named_link_out_of_the_store_is_refused(tmp_path: Path) -> None:
    storage = ModelStorage(tmp_path / "store")
    storage.save_model(artifact())
    elsewhere = ModelStorage(tmp_path / "elsewhere").save_model(artifact())
    folder = tmp_path / "store" / "demo"
    (folder / "EURUSD_1h_v2").symlink_to(elsewhere.path)  # looks like a version of the store
    latest = folder / "latest"
    latest.unlink()
    latest.symlink_to("EURUSD_1h_v2")
    for ref in ("demo/latest", "demo/EURUSD_1h_v2"):  # ids; a path names what it names
        with pytest.raises(ModelStorageError, match="out of the model store"):
            storage.load(ref)


_SAVE_INTO_A_FULL_FILE_SYSTEM = textwrap.dedent("""
    import resource, signal, sys
    from tests.unit.store.test_model_storage import artifact
    from ktrdr.errors import ModelStorageError
    from ktrdr.store.model_storage import ModelStorage

    big = artifact(hidden=(256,))
    # A file size cap makes every write past it fail (EFBIG) the way a full disk does (ENOSPC):
    # the write returns short, then errors. SIGXFSZ ignored so the write reports it.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        ModelStorage(sys.argv[1]).save_model(big)
    except ModelStorageError as exc:
        print("REFUSED", exc)
""")


def test_a_disk_that_fills_during_a_save_is_named_and_leaves_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SAVE_INTO_A_FULL_FILE_SYSTEM, str(tmp_path)],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("REFUSED cannot write model version "), done.stdout
    assert str(tmp_path / "demo" / "EURUSD_1h_v1") in done.stdout
    assert "File too large" in done.stdout and "nothing was saved" in done.stdout
    assert "free space where" in done.stdout and "unexpected pos" not in done.stdout
    assert [p.name for p in (tmp_path / "demo").iterdir()] == [".lock"]


def test_versions_of_one_set_list_in_their_number_order_whenever_they_were_built(
    tmp_path: Path,
) -> None:
    # Parallel workers stamp created_at when they build the artifact; the parent saves them as
    # they come, so version 2 may have been built before version 1.
    storage = ModelStorage(tmp_path)
    built = {
        "EURUSD-late": ("EURUSD", "2024-01-01T12:00:00+00:00"),
        "GBPUSD": ("GBPUSD", "2024-01-01T11:30:00+00:00"),
        "EURUSD-early": ("EURUSD", "2024-01-01T11:00:00+00:00"),
    }
    for symbol, created in built.values():
        model = artifact(symbols=(symbol,))
        model.manifest["created_at"] = created
        storage.save_model(model)
    listed = [(info.symbols[0], info.version) for info in storage.list_models()]
    assert listed == [("GBPUSD", 1), ("EURUSD", 1), ("EURUSD", 2)]
