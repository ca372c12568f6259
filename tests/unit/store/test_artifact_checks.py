"""Hostile models: names that would become paths, another strategy than asked for, NaN weights,
a missing key, an architecture over the cap. Each is refused before anything is written."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from ktrdr.errors import ModelStorageError
from ktrdr.store.artifact_checks import Expected, check_artifact
from ktrdr.store.model_artifact import ModelArtifact
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.received import ArtifactRefused, receive_artifact, save_received, seal
from tests.unit.store.test_model_storage import artifact

pytestmark = pytest.mark.unit

ASKED = Expected.of("demo", ["EURUSD"], ["1h"])


def _with_manifest(change: Any) -> ModelArtifact:
    model = artifact()
    manifest = copy.deepcopy(model.manifest)
    change(manifest)
    return replace(model, manifest=manifest)


def _everything_under(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("symbol", ["../../escaped", "/abs/path", "..", "a/b", ""])
def test_a_symbol_that_would_become_a_path_is_refused_on_receipt_and_on_save(
    tmp_path: Path, symbol: str
) -> None:
    hostile = _with_manifest(lambda m: m.update(symbols=[symbol]))
    store = tmp_path / "store" / "models"
    with pytest.raises(ArtifactRefused, match="symbols"):
        save_received(seal(hostile.to_bytes()), ModelStorage(store))
    with pytest.raises(ModelStorageError, match="symbols"):
        ModelStorage(store).save_model(hostile)  # the store's own save checks it too
    assert _everything_under(tmp_path) == _everything_under(store) == []


def test_a_timeframe_that_would_become_a_path_is_refused(tmp_path: Path) -> None:
    hostile = _with_manifest(
        lambda m: m.update(
            timeframes=["../1h"],
            base_timeframe="../1h",
            warmup_bars={"../1h": 1},
            stable_history_bars={"../1h": 1},
        )
    )
    with pytest.raises(ModelStorageError, match="timeframes"):
        ModelStorage(tmp_path / "m").save_model(hostile)
    assert _everything_under(tmp_path) == []


def test_a_model_of_something_else_than_was_asked_for_is_refused(tmp_path: Path) -> None:
    sealed = seal(artifact().to_bytes())
    assert receive_artifact(sealed, ASKED).strategy_name == "demo"
    for other in (
        Expected.of("other_strategy", ["EURUSD"], ["1h"]),
        Expected.of("demo", ["GBPUSD"], ["1h"]),
        Expected.of("demo", ["EURUSD"], ["1h", "4h"]),
    ):
        with pytest.raises(ArtifactRefused, match="that was asked for"):
            save_received(sealed, ModelStorage(tmp_path), other)
    assert _everything_under(tmp_path) == []


def test_a_manifest_and_a_strategy_that_disagree_are_refused() -> None:
    model = artifact()
    lying = replace(model, config={**model.config, "name": "someone_else"})
    with pytest.raises(ModelStorageError, match="resolved strategy 'someone_else'"):
        check_artifact(lying, "the model", ASKED)
    architecture = {**model.architecture, "hidden_layers": [3]}
    with pytest.raises(ModelStorageError, match="architecture differs"):
        check_artifact(replace(model, architecture=architecture), "the model")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_that_are_not_finite_are_refused(tmp_path: Path, value: float) -> None:
    model = artifact()
    key = next(iter(model.state_dict))
    state = dict(model.state_dict)
    state[key] = torch.full_like(state[key], value)
    with pytest.raises(ArtifactRefused, match="NaN or infinite"):
        save_received(seal(replace(model, state_dict=state).to_bytes()), ModelStorage(tmp_path))
    assert _everything_under(tmp_path) == []


def test_a_manifest_without_a_required_key_is_a_clear_refusal() -> None:
    hostile = _with_manifest(lambda m: m.pop("symbols"))
    with pytest.raises(ArtifactRefused, match=r"invalid manifest \(symbols: Field required"):
        receive_artifact(seal(hostile.to_bytes()))


def test_an_architecture_over_the_cap_is_refused_before_a_network_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*args: Any) -> Any:
        raise AssertionError("build_mlp must not run on an architecture over the cap")

    monkeypatch.setattr("ktrdr.neural.mlp.build_mlp", never)

    def huge(manifest: dict[str, Any]) -> None:
        manifest["architecture"] = {**manifest["architecture"], "hidden_layers": [100_000] * 8}

    with pytest.raises(ArtifactRefused, match="over the 50,000,000 ktrdr trains"):
        receive_artifact(seal(_with_manifest(huge).to_bytes()))
