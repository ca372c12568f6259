"""Train -> save -> load in a fresh process -> predict (ktrdr.inference.trained_model): the same
answers as the model in memory, and what predict refuses or warns about."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import special

from ktrdr.config import load_strategy_config
from ktrdr.data.store import load_bars
from ktrdr.errors import DataError
from ktrdr.inference.trained_model import TrainedModel, load_model
from ktrdr.store.model_storage import ModelStorage, SavedModel
from ktrdr.training.feature_pipeline import build_features
from ktrdr.training.run_spec import TrainingRun
from tests.conftest import REPO_ROOT, STRATEGIES_DIR
from tests.training_helpers import train_without_saving

pytestmark = pytest.mark.integration

FAST = {"training.epochs": 3, "training.batch_size": 64}

_PREDICT_IN_CHILD = """
import json, sys
import pandas as pd
from ktrdr.data.store import load_bars
from ktrdr.inference.trained_model import load_model
model = load_model(sys.argv[1])
frames = {tf: load_bars("EURUSD", tf, "2017-03-15", "2017-05-31", data_dir=sys.argv[2])
          for tf in model.timeframes}
bars = frames if len(frames) > 1 else frames[model.base_timeframe]
predictions = model.predict(bars)
predictions.to_json(sys.argv[3], orient="split", date_format="iso", double_precision=15)
"""


def _predict_in_fresh_process(path: Path, data_dir: Path, out: Path) -> pd.DataFrame:
    subprocess.run(
        [sys.executable, "-c", _PREDICT_IN_CHILD, str(path), str(data_dir), str(out)],
        check=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    document = json.loads(out.read_text())
    frame = pd.DataFrame(
        document["data"],
        columns=document["columns"],
        index=pd.to_datetime(document["index"], utc=True),
    )
    return frame


def _trained_and_saved(
    strategy: str, timeframes: list[str], data_dir: Path, models_dir: Path
) -> tuple[TrainingRun, SavedModel, dict[str, pd.DataFrame]]:
    """A short training of ``strategy`` (GOOGL for daily bars, else EURUSD), saved, and the bars
    of a later period overlapping its end, to predict on."""
    config = load_strategy_config(STRATEGIES_DIR / strategy, FAST)
    daily = timeframes == ["1d"]
    symbol = "GOOGL" if daily else "EURUSD"
    trained = ("2010-01-01", "2014-12-31") if daily else ("2017-01-01", "2017-03-31")
    later = ("2015-01-01", "2016-12-31") if daily else ("2017-03-15", "2017-05-31")
    run = train_without_saving(config, [symbol], timeframes, *trained, data_dir)
    saved = ModelStorage(models_dir).save_model(run.artifact)
    frames = {tf: load_bars(symbol, tf, *later, data_dir=data_dir) for tf in timeframes}
    return run, saved, frames


@pytest.mark.parametrize(
    ("strategy", "timeframes"),
    [
        ("neuro_mean_reversion.yaml", ["1h"]),
        ("trend_momentum_mtf.yaml", ["1h", "4h"]),
    ],
)
def test_reloaded_model_predicts_exactly_like_the_trained_one(
    sample_data_dir: Path,
    models_dir: Path,
    tmp_path: Path,
    strategy: str,
    timeframes: list[str],
) -> None:
    run, saved, frames = _trained_and_saved(strategy, timeframes, sample_data_dir, models_dir)
    in_memory = TrainedModel(run.artifact)
    expected = in_memory.predict(frames if len(frames) > 1 else frames["1h"])
    reloaded = _predict_in_fresh_process(saved.path, sample_data_dir, tmp_path / "p.json")
    assert reloaded.index.equals(expected.index)
    assert (reloaded["class_id"].to_numpy() == expected["class_id"].to_numpy()).all()
    np.testing.assert_allclose(
        reloaded[["prob_buy", "prob_hold", "prob_sell"]].to_numpy(),
        expected[["prob_buy", "prob_hold", "prob_sell"]].to_numpy(),
        rtol=0,
        atol=1e-6,
    )


_BY_HAND_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "gelu": lambda x: 0.5 * x * (1.0 + special.erf(x / np.sqrt(2.0))),
}


def _predict_by_hand(path: Path, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The oracle: the saved version's own files (config, manifest, scaler, weights) applied in
    float64 numpy, without TrainedModel, apply_scaler or the torch module predict uses."""
    config = yaml.safe_load((path / "config.yaml").read_text())
    manifest = json.loads((path / "manifest.json").read_text())
    scaler = json.loads((path / "scaler.json").read_text())
    state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    features = build_features(frames, config, symbol="EURUSD", on_stale="raise")
    assert list(features.columns) == manifest["feature_names"] == scaler["feature_names"]
    x = (features.to_numpy(np.float64) - np.asarray(scaler["centers"])) / np.asarray(
        scaler["scales"]
    )
    activation = _BY_HAND_ACTIVATIONS[manifest["architecture"]["activation"]]
    layers = sorted({int(key.split(".")[0]) for key in state})
    for position, layer in enumerate(layers):
        weight = state[f"{layer}.weight"].double().numpy()
        bias = state[f"{layer}.bias"].double().numpy()
        x = x @ weight.T + bias
        if position < len(layers) - 1:  # dropout is off at inference; no activation on logits
            x = activation(x)
    exp = np.exp(x - x.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    return pd.DataFrame(
        probabilities, index=features.index, columns=["prob_buy", "prob_hold", "prob_sell"]
    )


@pytest.mark.parametrize(
    ("strategy", "timeframes"),
    [
        ("neuro_mean_reversion.yaml", ["1h"]),
        ("trend_momentum_mtf.yaml", ["1h", "4h"]),
        ("bollinger_reversion_daily.yaml", ["1d"]),
    ],
)
def test_a_reloaded_model_predicts_what_its_saved_files_compute_by_hand(
    sample_data_dir: Path,
    models_dir: Path,
    strategy: str,
    timeframes: list[str],
) -> None:
    _, saved, frames = _trained_and_saved(strategy, timeframes, sample_data_dir, models_dir)
    predicted = load_model(saved.path).predict(frames if len(frames) > 1 else frames[timeframes[0]])
    oracle = _predict_by_hand(saved.path, frames)
    assert len(predicted) > 100 and predicted.index.equals(oracle.index)
    columns = ["prob_buy", "prob_hold", "prob_sell"]
    np.testing.assert_allclose(predicted[columns].to_numpy(), oracle.to_numpy(), atol=1e-5)
    # Classes agree wherever the top two probabilities are not within float32 noise.
    ranked = np.sort(oracle.to_numpy(), axis=1)
    clear = ranked[:, -1] - ranked[:, -2] > 1e-4
    assert clear.mean() > 0.95
    expected = oracle.to_numpy().argmax(axis=1)
    assert (predicted["class_id"].to_numpy()[clear] == expected[clear]).all()
    assert (
        predicted["class"].astype(str).to_numpy()
        == np.array(["BUY", "HOLD", "SELL"])[predicted["class_id"].to_numpy()]
    ).all()


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, _sample_store_template: Path
) -> dict[str, Any]:
    config = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", FAST)
    run = train_without_saving(
        config, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", _sample_store_template
    )
    models = tmp_path_factory.mktemp("models")
    saved = ModelStorage(models).save_model(run.artifact)
    return {"run": run, "path": saved.path, "data": _sample_store_template}


def test_prediction_shape_index_and_probabilities(trained: dict[str, Any]) -> None:
    model = load_model(trained["path"])
    bars = load_bars(
        "EURUSD", "1h", "2017-04-01", "2017-04-30", history_bars=200, data_dir=trained["data"]
    )
    predictions = model.predict(bars)
    assert list(predictions.columns) == ["class", "class_id", "prob_buy", "prob_hold", "prob_sell"]
    assert predictions.index.isin(bars.index).all()
    # Rows only where the feature row is complete: every bar after the warm-up.
    warmup = model.manifest["warmup_bars"]["1h"]
    assert len(predictions) == len(bars) - warmup
    assert predictions.index[-1] == bars.index[-1]
    np.testing.assert_allclose(
        predictions[["prob_buy", "prob_hold", "prob_sell"]].sum(axis=1), 1.0, atol=1e-9
    )
    assert set(predictions["class"].astype(str)) <= {"BUY", "HOLD", "SELL"}
    ids = predictions["class_id"].to_numpy()
    assert (predictions["class"].cat.codes.to_numpy() == ids).all()


def test_predicts_on_the_last_bars_where_no_label_can_exist(trained: dict[str, Any]) -> None:
    model = load_model(trained["path"])
    tail = load_bars("EURUSD", "1h", data_dir=trained["data"]).iloc[-120:]
    predictions = model.predict(tail)
    assert predictions.index[-1] == tail.index[-1]  # the very last bar: no future, still predicted


def test_naive_input_gives_naive_output_and_columns_are_matched_by_name(
    trained: dict[str, Any],
) -> None:
    model = load_model(trained["path"])
    bars = load_bars(
        "EURUSD", "1h", "2017-04-01", "2017-04-10", history_bars=100, data_dir=trained["data"]
    )
    aware = model.predict(bars)
    naive_bars = bars.tz_localize(None).rename(columns=str.capitalize)[
        ["Volume", "Close", "Low", "High", "Open"]
    ]
    naive = model.predict(naive_bars)
    assert naive.index.tz is None
    assert (naive.index == aware.index.tz_localize(None)).all()
    np.testing.assert_array_equal(naive["prob_buy"].to_numpy(), aware["prob_buy"].to_numpy())


def test_prediction_errors(trained: dict[str, Any]) -> None:
    model = load_model(trained["path"])
    bars = load_bars("EURUSD", "1h", "2017-04-01", "2017-04-10", data_dir=trained["data"])
    with pytest.raises(DataError, match="too few bars to predict"):
        model.predict(bars.iloc[:20])
    # No feature of this strategy reads volume: bars without it predict the same.
    with_volume = model.predict(bars)
    pd.testing.assert_frame_equal(model.predict(bars.drop(columns="volume")), with_volume)
    with pytest.raises(DataError, match="lack close"):
        model.predict(bars.drop(columns="close"))
    with pytest.raises(DataError, match="no bars for timeframe"):
        model.predict({"4h": bars})


def test_start_keeps_history_out_and_short_history_warns(trained: dict[str, Any]) -> None:
    model = load_model(trained["path"])
    needed = model.stable_history_bars["1h"]
    bars = load_bars(
        "EURUSD", "1h", "2017-04-01", "2017-04-30", history_bars=needed, data_dir=trained["data"]
    )
    everything = model.predict(bars)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough history: no warning
        april = model.predict(bars, start="2017-04-01")
    assert april.index[0] >= pd.Timestamp("2017-04-01", tz="UTC") > everything.index[0]
    pd.testing.assert_frame_equal(april, everything[everything.index >= "2017-04-01"])
    with pytest.warns(UserWarning, match=rf"10 1h bars before .*fewer than the {needed} bars"):
        model.predict(bars.iloc[needed - 10 :], start="2017-04-01")
    with pytest.warns(UserWarning, match="1h bars in all, fewer than"):
        model.predict(bars.iloc[: needed // 2])


def test_gaps_in_the_bars_are_reported(trained: dict[str, Any]) -> None:
    model = load_model(trained["path"])
    bars = load_bars("EURUSD", "1h", "2017-01-01", "2017-12-31", data_dir=trained["data"])
    holed = bars[(bars.index < "2017-05-01") | (bars.index >= "2017-10-01")]
    with pytest.warns(UserWarning, match=r"1 gap\(s\) in the 1h bars"):
        predictions = model.predict(holed)
    # After the gap the indicators restart: predictions resume only after their warm-up.
    first_after = predictions.index[predictions.index >= "2017-10-01"][0]
    assert (
        first_after == holed.index[holed.index >= "2017-10-01"][model.manifest["warmup_bars"]["1h"]]
    )


@pytest.fixture(scope="module")
def trained_mtf(_sample_store_template: Path) -> TrainedModel:
    config = load_strategy_config(STRATEGIES_DIR / "trend_momentum_mtf.yaml", FAST)
    run = train_without_saving(
        config, ["EURUSD"], ["1h", "4h"], "2017-01-01", "2017-03-31", _sample_store_template
    )
    return TrainedModel(run.artifact)


def test_stale_or_swapped_higher_timeframe_bars_are_refused(
    trained_mtf: TrainedModel, _sample_store_template: Path
) -> None:
    frames = {
        tf: load_bars("EURUSD", tf, "2017-04-01", "2017-06-30", data_dir=_sample_store_template)
        for tf in ("1h", "4h")
    }
    complete = trained_mtf.predict(frames)
    # 4h bars that end a month before the 1h bars would carry June's features from May.
    early = {"1h": frames["1h"], "4h": frames["4h"].loc[:"2017-05-31"]}
    with pytest.raises(DataError, match="context older than one 4h bar"):
        trained_mtf.predict(early)
    # Both frames cut at the same time predict what the complete frames predicted.
    cut = {tf: frame.loc[:"2017-05-31"] for tf, frame in frames.items()}
    same = trained_mtf.predict(cut)
    pd.testing.assert_frame_equal(same, complete.loc[same.index])
    with pytest.raises(DataError, match=r"predict\(1h bars\): median bar spacing is 0 days 04:00"):
        trained_mtf.predict({"1h": frames["4h"], "4h": frames["1h"]})


def test_bars_far_outside_the_training_distribution_warn_of_drift(
    _sample_store_template: Path,
) -> None:
    # Price-context features (returns, ranges) follow volatility: the same model on the same
    # pair's later bars stays inside its training range; on those bars with every move ten
    # times larger (another instrument, a crash), most rows lie far outside it.
    config = load_strategy_config(
        STRATEGIES_DIR / "neuro_mean_reversion.yaml",
        {**FAST, "model.features.include_price_context": True},
    )
    run = train_without_saving(
        config, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", _sample_store_template
    )
    model = TrainedModel(run.artifact)
    bars = load_bars("EURUSD", "1h", "2017-04-01", "2017-05-31", data_dir=_sample_store_template)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(bars, symbol="EURUSD")
    wild = bars.copy()
    anchor = bars["close"].iloc[0]
    wild["close"] = np.exp(np.log(bars["close"]).diff().fillna(0).mul(10).cumsum()) * anchor
    wild["open"] = wild["close"].shift(1).fillna(anchor)
    spread = (bars["high"] - bars["low"]) * 10
    wild["high"] = wild[["open", "close"]].max(axis=1) + spread / 2
    wild["low"] = wild[["open", "close"]].min(axis=1) - spread / 2
    with pytest.warns(UserWarning, match=r"of the rows \(\d+ of \d+\) hold a feature far outside"):
        model.predict(wild, symbol="EURUSD")
    from ktrdr.inference.trained_model import drift

    assert run.artifact.scaler is not None
    report = drift(build_features({"1h": wild}, config), run.artifact.scaler)
    assert report is not None and report.share > 0.2
    assert report.features[0][0].startswith(("ret_", "range_hl", "body"))


def test_a_symbol_the_model_never_saw_is_warned_of(trained: dict[str, Any]) -> None:
    model = load_model(trained["path"])
    bars = load_bars("EURUSD", "1h", "2017-04-01", "2017-04-30", data_dir=trained["data"])
    with pytest.warns(UserWarning, match=r"EURJPY is not a symbol this model was trained on"):
        model.predict(bars, symbol="EURJPY")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(bars, symbol="EURUSD")
