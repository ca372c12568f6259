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
    return {"models": models, "data": _sample_store_template, "saved": saved, "run": run}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_and_show(store: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "list", "--models-dir", str(store["models"]), "--json")
    [entry] = json.loads(out)
    assert code == 0 and entry["model_id"] == "neuro_mean_reversion/EURUSD_1h_v1"
    verdict = store["run"].artifact.metrics["test_metrics"]["verdict"]
    assert entry["verdict"] == verdict and entry["p_value"] == verdict["p_value"]
    assert entry["test_majority_baseline_accuracy"] == verdict["test_majority_baseline"]
    assert entry["set_latest"] is True
    code, out, _ = run(capsys, "models", "list", "--models-dir", str(store["models"]))
    header, line = out.splitlines()
    columns = dict(zip(header.split("\t"), line.split("\t"), strict=True))
    assert columns["p"] == f"{verdict['p_value']:.3g}" and columns["verdict"] == verdict["label"]
    assert columns["test majority"] == f"{verdict['test_majority_baseline']:.1%}"
    assert columns["latest"] == "* latest"
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
    # Both baselines, the p-value and the verdict; the splits in time order.
    flat = " ".join(out.split())
    test = store["run"].artifact.metrics["test_metrics"]
    assert f"training majority {test['baseline_accuracy']:.3f}" in flat
    assert f"test majority {test['test_majority_baseline_accuracy']:.3f}" in flat
    assert f"p {test['p_value']:.3g}" in flat and test["verdict"]["sentences"][0] in flat
    splits = [
        line.split()[0]
        for line in out.splitlines()
        if line.split()[:1] in (["train"], ["validation"], ["test"]) and "EURUSD" in line
    ]
    assert splits == ["train", "validation", "test"], out
    assert "…" not in out and "2017-01-03 09:00" in out
    stored = json.loads((store["saved"].path / "metrics.json").read_text())
    assert stored["test_metrics"]["verdict"] == test["verdict"]
    assert set(test["verdict"]) >= {
        "train_majority_baseline",
        "test_majority_baseline",
        "p_value",
        "sentences",
        "collapsed",
        "near_collapse",
    }
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
        store["saved"].model_id,
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


def test_latest_with_a_symbol_is_the_newest_version_trained_on_it(
    tmp_path: Path, store: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # One pointer per strategy: "predict .../latest --symbol EURUSD" used the USDCAD model that
    # was trained after it, silently.
    storage = ModelStorage(tmp_path)
    artifact = store["run"].artifact
    eurusd = storage.save_model(artifact)
    manifest = {**artifact.manifest, "symbols": ["USDCAD"]}
    usdcad = storage.save_model(type(artifact)(**{**artifact.__dict__, "manifest": manifest}))
    common = ["--start", "2017-04-03", "--end", "2017-04-04", "--data-dir", str(store["data"])]
    common += ["--models-dir", str(tmp_path)]
    code, out, err = run(
        capsys, "predict", "neuro_mean_reversion/latest", "--symbol", "EURUSD", *common
    )
    assert code == 0 and f"with {eurusd.path.name}:" in out, err
    assert "Warning" not in err
    # Another set's model, named outright: used, with a warning that it never saw EURUSD.
    code, out, err = run(
        capsys, "predict", "neuro_mean_reversion/USDCAD_1h_latest", "--symbol", "EURUSD", *common
    )
    assert code == 0 and f"with {usdcad.path.name}:" in out
    assert "EURUSD is not a symbol this model was trained on (USDCAD)" in " ".join(err.split())
    code, _, err = run(
        capsys, "predict", "neuro_mean_reversion/latest", "--symbol", "EURJPY", *common
    )
    assert code == 1 and "no version of neuro_mean_reversion was trained on EURJPY" in err
    assert "neuro_mean_reversion/EURUSD_1h_latest" in " ".join(err.split())


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
