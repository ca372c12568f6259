"""``ktrdr models list|show`` and ``ktrdr predict`` on a model trained through the steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ktrdr.cli.main import main
from ktrdr.config import load_strategy_config
from ktrdr.store.model_storage import ModelStorage
from tests.conftest import STRATEGIES_DIR
from tests.training_helpers import train_without_saving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, _sample_store_template: Path) -> dict[str, Any]:
    config = load_strategy_config(
        STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 2}
    )
    run = train_without_saving(
        config, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", _sample_store_template
    )
    models = tmp_path_factory.mktemp("models")
    saved = ModelStorage(models).save_model(run.artifact)
    return {"models": models, "data": _sample_store_template, "saved": saved}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_and_show(store: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "list", "--models-dir", str(store["models"]), "--json")
    [entry] = json.loads(out)
    assert code == 0 and entry["model_id"] == "neuro_mean_reversion/EURUSD_1h_v1"
    assert entry["latest"] is True and 0 <= entry["test_accuracy"] <= 1
    code, out, _ = run(
        capsys,
        "models",
        "show",
        "neuro_mean_reversion/latest",
        "--models-dir",
        str(store["models"]),
    )
    assert code == 0 and "test accuracy" in out and "baseline" in out and "validation" in out
    assert f"content digest {store['saved'].content_digest}" in out
    code, out, _ = run(
        capsys,
        "models",
        "show",
        "neuro_mean_reversion/latest",
        "--models-dir",
        str(store["models"]),
        "--json",
    )
    assert json.loads(out)["content_digest"] == store["saved"].content_digest
    code, _, err = run(
        capsys, "models", "show", "nope/latest", "--models-dir", str(store["models"])
    )
    assert code == 1 and "no model at 'nope/latest'" in err


def test_predict_writes_csv_for_exactly_the_range(
    store: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "april.csv"
    code, out, err = run(
        capsys,
        "predict",
        str(store["saved"].path),
        "--symbol",
        "EURUSD",
        "--start",
        "2017-04-03",
        "--end",
        "2017-04-28",
        "--output",
        str(output),
        "--data-dir",
        str(store["data"]),
        "--models-dir",
        str(store["models"]),
    )
    assert code == 0, err
    predictions = pd.read_csv(output, index_col="timestamp", parse_dates=True)
    # History before --start is loaded, so even the first April bar gets a prediction.
    assert predictions.index[0] == pd.Timestamp("2017-04-03 00:00", tz="UTC")
    assert predictions.index[-1].strftime("%Y-%m-%d") == "2017-04-28"
    assert list(predictions.columns) == ["class", "class_id", "prob_buy", "prob_hold", "prob_sell"]
    assert "predictions for EURUSD" in out


def test_predict_json_and_errors(store: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--data-dir", str(store["data"]), "--models-dir", str(store["models"])]
    code, out, _ = run(
        capsys,
        "predict",
        "neuro_mean_reversion/latest",
        "--symbol",
        "EURUSD",
        "--start",
        "2017-04-03",
        "--end",
        "2017-04-04",
        "--json",
        *common,
    )
    document = json.loads(out)
    assert code == 0 and document["rows"] == len(document["predictions"]) == 48
    # Every record carries its bar's open time.
    stamps = [record["timestamp"] for record in document["predictions"]]
    assert stamps[0].startswith("2017-04-03T00:00:00") and stamps[-1].startswith("2017-04-04T23")
    code, out, err = run(
        capsys,
        "predict",
        "neuro_mean_reversion/latest",
        "--symbol",
        "GBPUSD",
        "--start",
        "2017-04-03",
        "--end",
        "2017-04-04",
        "--json",
        *common,
    )
    assert code == 2 and json.loads(out)["error"]["type"] == "DataError"
    assert "GBPUSD_1h.csv does not exist" in err


def test_models_list_never_cuts_ids_when_piped(
    tmp_path: Path, store: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # A version whose id is longer than any terminal line: piped output keeps it whole.
    config = load_strategy_config(
        STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 1}
    )
    run_ = train_without_saving(
        config, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", store["data"]
    )
    manifest = dict(run_.artifact.manifest)
    manifest["symbols"] = [f"SYMBOL{i:02d}.X" for i in range(12)]
    long = ModelStorage(tmp_path).save_model(
        type(run_.artifact)(**{**run_.artifact.__dict__, "manifest": manifest})
    )
    code, out, _ = run(capsys, "models", "list", "--models-dir", str(tmp_path))
    assert code == 0 and len(long.model_id) > 150
    lines = out.splitlines()
    assert lines[0].split("\t")[0] == "model id"
    assert [line.split("\t")[0] for line in lines[1:]] == [long.model_id]
