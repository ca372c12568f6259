"""End-to-end guard on the real strategy; each issue extends it to the furthest step it delivers."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.config import load_strategy_config
from ktrdr.data.store import load_bars
from ktrdr.data.timeframes import base_timeframe
from tests.conftest import STRATEGIES_DIR

pytestmark = [pytest.mark.e2e]

REAL_STRATEGY = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
START, END = "2017-01-01", "2017-03-31"


def test_real_strategy_validates_and_its_sample_bars_load(e2e_env: dict[str, Path]) -> None:
    config = load_strategy_config(
        REAL_STRATEGY, overrides={"training.epochs": 5, "training.batch_size": 64}
    )
    assert config["name"] == "neuro_mean_reversion"
    assert config["training"]["epochs"] == 5
    symbols = config["training_data"]["symbols"]
    timeframe = base_timeframe(config["training_data"]["timeframes"])
    for symbol in symbols:
        bars = load_bars(symbol, timeframe, START, END)  # from KTRDR_DATA_DIR
        assert bars.index[0].strftime("%Y-%m-%d") == "2017-01-01"
        assert bars.index[-1].strftime("%Y-%m-%d") == "2017-03-31"
        assert len(bars) > 1400
        assert (bars["high"] >= bars["low"]).all()


def test_steps_1_to_6_on_the_real_strategy(e2e_env: dict[str, Path]) -> None:
    from ktrdr.training.data_loading import load_training_data
    from ktrdr.training.data_split import split_data
    from ktrdr.training.feature_engineering import (
        engineer_features,
        feature_history_bars,
        feature_names,
    )
    from ktrdr.training.feature_scaling import apply_scaler, fit_scaler
    from ktrdr.training.fuzzy_generation import generate_fuzzy_memberships
    from ktrdr.training.indicator_calculation import calculate_indicators, indicator_history_bars
    from ktrdr.training.label_generation import generate_labels

    config = load_strategy_config(REAL_STRATEGY)
    symbols = config["training_data"]["symbols"]
    timeframes = config["training_data"]["timeframes"]
    history = indicator_history_bars(config) + feature_history_bars(config)
    bars = load_training_data(symbols, timeframes, START, END, history_bars=history)
    per_symbol = {}
    for symbol in symbols:
        indicators = calculate_indicators(bars[symbol], config, symbol=symbol)
        fuzzy = generate_fuzzy_memberships(indicators, config)
        features = engineer_features(
            fuzzy, indicators, bars[symbol], config, start_date=START, end_date=END
        )
        labels = generate_labels(bars[symbol][timeframes[0]], config)
        assert list(features.columns) == feature_names(config, timeframes)
        assert features.index[0] >= features.index[0].normalize().replace(day=1)
        per_symbol[symbol] = (features, labels)
    splits = split_data(per_symbol, config)
    scaler = fit_scaler(splits.train.features)
    train = apply_scaler(splits.train.features, scaler)
    assert len(splits.train) > 900 and len(splits.validation) > 150 and len(splits.test) > 150
    assert abs(float(train.to_numpy().mean())) < 1e-9
    shares = {
        name: count / len(splits.train)
        for name, count in splits.class_counts["train"]["all"].items()
    }
    assert max(shares.values()) <= 0.6, shares  # the strategy's labels stay balanced
    train_end = splits.boundaries["train"]["EURUSD"]["end"]
    validation_start = splits.boundaries["validation"]["EURUSD"]["start"]
    assert validation_start > train_end


def test_train_evaluate_save_reload_and_predict(e2e_env: dict[str, Path], tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import numpy as np

    from ktrdr.training.model_storage import ModelStorage
    from tests.conftest import REPO_ROOT
    from tests.training_helpers import train_with_steps

    config = load_strategy_config(
        REAL_STRATEGY, overrides={"training.epochs": 5, "training.batch_size": 64}
    )
    run = train_with_steps(config, ["EURUSD"], ["1h"], START, END, e2e_env["data_dir"])
    metrics = run.test_metrics
    for key in ("accuracy", "precision", "recall", "f1_score", "baseline_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0 and np.isfinite(metrics[key])
    assert sum(map(sum, metrics["confusion_matrix"])) == len(run.splits.test)
    saved = ModelStorage().save_model(run.artifact)  # KTRDR_MODELS_DIR from the fixture
    assert saved.path.is_relative_to(e2e_env["models_dir"])
    child = (
        "import json, sys\n"
        "from ktrdr import load_model\n"
        "from ktrdr.data.store import load_bars\n"
        "m = load_model(sys.argv[1])\n"
        "bars = load_bars('EURUSD', '1h', '2017-04-01', '2017-04-30',"
        " history_bars=m.stable_history_bars['1h'])\n"
        "p = m.predict(bars)\n"
        "april = p[p.index >= '2017-04-01']\n"
        "in_range = bars[bars.index >= '2017-04-01']\n"
        "print(json.dumps({'rows': len(april), 'bars': len(in_range),"
        " 'classes': sorted(set(april['class'].astype(str)))}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", child, str(saved.path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    report = json.loads(result.stdout)
    assert report["rows"] == report["bars"] > 400  # every April bar after warm-up is predicted
    assert set(report["classes"]) <= {"BUY", "HOLD", "SELL"}
