"""The pictures saved with every model version."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from ktrdr.cli.main import main
from ktrdr.errors import ModelStorageError
from ktrdr.store.layout import PICTURE_FILES
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.plots import importance_note, render_pictures
from tests.unit.store.test_model_storage import artifact

pytestmark = pytest.mark.unit

METRICS = {
    "training_metrics": {
        "train_loss": [1.1, 1.0, 0.95],
        "val_loss": [1.12, 1.05, 1.07],
        "train_accuracy": [0.40, 0.45, 0.50],
        "val_accuracy": [0.41, 0.44, 0.43],
        "best_epoch": 2,
        "stopped_by": "max_epochs",
    },
    "test_metrics": {
        "accuracy": 0.52,
        "confusion_matrix": [[10, 5, 1], [4, 30, 2], [1, 6, 9]],
        "baseline_accuracy": 0.44,
        "test_majority_baseline_accuracy": 0.47,
    },
    "feature_importance": {f"f{i}": 0.01 * (i - 5) for i in range(20)},
}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_each_picture_is_a_sensible_png_and_the_same_metrics_give_the_same_bytes() -> None:
    pictures = render_pictures(METRICS)
    assert set(pictures) == set(PICTURE_FILES)
    for data in pictures.values():
        width, height = png_size(data)
        assert 250 <= width <= 1200 and 200 <= height <= 1200
        assert 5_000 < len(data) < 500_000
    assert render_pictures(METRICS) == pictures
    # A run without importance (or any picture's data) simply has fewer pictures.
    assert set(render_pictures({"training_metrics": METRICS["training_metrics"]})) == {"curves.png"}


def test_a_collapsed_model_s_empty_importance_chart_says_why() -> None:
    # As seen on real bars: a model answering HOLD for every row has every importance 0, and
    # importance.png was an empty chart with no word of why.
    flat = dict.fromkeys(METRICS["feature_importance"], 0.0)
    collapsed = {
        "accuracy": 0.44,
        "verdict": {"collapsed": True, "dominant_class": "HOLD"},
    }
    note = importance_note(flat, collapsed)
    assert note is not None and "predicts HOLD only" in note
    assert "changed no validation prediction" in str(importance_note(flat, {}))
    assert importance_note(METRICS["feature_importance"], collapsed) is None
    # A stored verdict of the wrong shape is not trusted to name a class.
    assert "predicts" not in str(importance_note(flat, {"verdict": {"collapsed": "yes"}}))

    silent = render_pictures({"feature_importance": flat})["importance.png"]
    noted = render_pictures({"feature_importance": flat, "test_metrics": collapsed})
    assert noted["importance.png"] != silent  # the class is written on the chart


def test_importance_bars_carry_their_spread_over_the_repeats() -> None:
    spread = {name: 0.004 for name in METRICS["feature_importance"]}
    plain = render_pictures(METRICS)["importance.png"]
    whiskers = render_pictures({**METRICS, "feature_importance_spread": spread})
    assert whiskers["importance.png"] != plain


def test_saved_versions_hold_hashed_pictures_and_older_ones_still_load(tmp_path: Path) -> None:
    model = artifact()
    model.metrics.update(METRICS)
    storage = ModelStorage(tmp_path)
    saved = storage.save_model(model)
    manifest = json.loads((saved.path / "manifest.json").read_text())
    assert set(PICTURE_FILES) <= set(manifest["files"])
    storage.load(saved.model_id)

    # A version saved before pictures existed: no pictures, not listed. It loads, and
    # `models plot` draws and lists them.
    for name in PICTURE_FILES:
        (saved.path / name).unlink()
        del manifest["files"][name]
    (saved.path / "manifest.json").write_text(json.dumps(manifest))
    storage.load(saved.model_id)
    assert main(["models", "plot", saved.model_id, "--models-dir", str(tmp_path)]) == 0
    drawn = json.loads((saved.path / "manifest.json").read_text())["files"]
    assert set(PICTURE_FILES) <= set(drawn)
    storage.load(saved.model_id)

    # A changed picture is caught like any other changed file.
    (saved.path / "curves.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ModelStorageError, match=r"curves\.png: sha256 does not match"):
        storage.load(saved.model_id)


def test_models_show_prints_where_the_pictures_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = artifact()
    model.metrics.update(METRICS)
    saved = ModelStorage(tmp_path).save_model(model)
    assert main(["models", "show", saved.model_id, "--models-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(saved.path / "curves.png") in out and str(saved.path / "confusion.png") in out


def test_models_list_fits_80_columns_without_cutting_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from ktrdr.cli import models as models_cli

    storage = ModelStorage(tmp_path)
    for seed in (1, 2):
        model = artifact(
            name="a_rather_long_strategy_name",
            symbols=("EURUSD", "GBPUSD"),
            timeframes=("1h", "4h"),
            seed=seed,
        )
        model.manifest["seed"] = seed
        model.manifest["overrides"] = {"training.learning_rate": 0.003, "training.seed": seed}
        storage.save_model(model)
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    monkeypatch.setattr(models_cli, "stdout", console)
    assert main(["models", "list", "--models-dir", str(tmp_path)]) == 0
    lines = buffer.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    text = buffer.getvalue()
    for info in storage.list_models():
        assert info.model_id in text  # whole, not cut with an ellipsis
    assert " 1 " in text and " 2 " in text  # the seeds
