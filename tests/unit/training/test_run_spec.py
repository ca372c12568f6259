"""A run spec is checked once, where it is built, and nothing below re-checks it."""

from __future__ import annotations

import dataclasses
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ktrdr.config import loader
from ktrdr.data import validation
from ktrdr.errors import DataError, KtrdrError, StrategyConfigError, TrainingError
from ktrdr.training.run_spec import build_run_spec
from ktrdr.training.train_strategy import StrategyTrainer
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
MTF = STRATEGIES_DIR / "trend_momentum_mtf.yaml"


def test_defaults_come_from_the_strategy_and_overrides_are_applied_and_kept() -> None:
    spec = build_run_spec(
        MTF, None, None, "2017-01-01", "2017-03-31", overrides={"training.epochs": 3}
    )
    assert spec.symbols == ("EURUSD",) and spec.timeframes == ("1h", "4h")
    assert spec.strategy["training"]["epochs"] == 3
    assert spec.overrides == {"training.epochs": 3}
    assert spec.name == "trend_momentum_mtf" and spec.seed == spec.strategy["training"]["seed"]
    assert spec.save and spec.threads is None and spec.device is None
    assert len(spec.run_id) == 32  # a fresh id when none is given


def test_timeframes_are_ordered_shortest_first_and_paths_become_text(tmp_path: Path) -> None:
    spec = build_run_spec(
        MTF,
        ["EURUSD"],
        ["4h", "1h"],
        "2017-01-01",
        "2017-03-31",
        data_dir=tmp_path,
        models_dir=tmp_path / "m",
        device="CPU",
        run_id="op-1",
    )
    assert spec.timeframes == ("1h", "4h")
    assert spec.data_dir == str(tmp_path) and spec.models_dir == str(tmp_path / "m")
    assert spec.device == "cpu" and spec.run_id == "op-1"


def test_a_spec_is_frozen_and_survives_pickling() -> None:
    spec = build_run_spec(REAL, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", threads=2)
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.save = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"symbols": "EURUSD"}, DataError, "symbols must be a list"),
        ({"symbols": []}, DataError, "no symbols given"),
        ({"symbols": ["EURUSD", "EURUSD"]}, DataError, "more than once"),
        ({"symbols": ["../etc"]}, DataError, "invalid symbol"),
        ({"timeframes": []}, DataError, "no timeframes given"),
        ({"timeframes": ["7x"]}, DataError, "7x"),
        ({"start_date": 20170101}, DataError, "start_date"),
        ({"end_date": "2016-01-01"}, DataError, "end_date"),
        ({"data_mode": "remote"}, DataError, "data_mode='remote'"),
        ({"threads": 0}, TrainingError, "threads=0"),
        ({"threads": True}, TrainingError, "threads=True"),
        ({"threads": "2"}, TrainingError, "threads="),
        ({"device": "gpu"}, TrainingError, "not a device"),
        ({"run_id": "../x"}, TrainingError, "run id"),
        ({"validation_split": 0.7}, StrategyConfigError, "validation_split=0.7"),
        ({"validation_split": "0.2"}, StrategyConfigError, "validation_split="),
        ({"overrides": {"training.epochs": 0}}, StrategyConfigError, "training.epochs"),
    ],
)
def test_every_check_that_needs_no_bars_fails_here_naming_the_value(
    arguments: dict[str, Any], error: type[KtrdrError], message: str
) -> None:
    call: dict[str, Any] = {
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "start_date": "2017-01-01",
        "end_date": "2017-03-31",
        **arguments,
    }
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        build_run_spec(REAL, **call)


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Count calls of ``module.name`` through every ktrdr module that imported it by name."""
    original: Callable[..., Any] = getattr(module, name)
    calls = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    for loaded in list(sys.modules.values()):
        if getattr(loaded, "__name__", "").startswith("ktrdr") and (
            getattr(loaded, name, None) is original
        ):
            monkeypatch.setattr(loaded, name, counted)
    return calls


@pytest.mark.parametrize("flag", ["true", "false"])
def test_a_run_checks_its_strategy_and_request_once(
    flag: str, sample_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    strategy_checks = _count_calls(monkeypatch, loader, "load_strategy")
    name_checks = _count_calls(monkeypatch, validation, "check_names")
    spec = build_run_spec(
        REAL,
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-02-28",
        overrides={"training.epochs": 1},
        save=False,
        data_dir=sample_data_dir,
    )
    assert (strategy_checks[0], name_checks[0]) == (1, 2)  # symbols and timeframes
    run = StrategyTrainer().train(spec)
    assert run.result["success"]
    # Nothing below the spec validated the strategy or the names again.
    assert (strategy_checks[0], name_checks[0]) == (1, 2)


@pytest.mark.parametrize("start", ["0000-01-01", "0001-01-01", "1899-12-31"])
def test_a_date_no_bar_can_have_is_bad_input_at_the_entry_point(start: str) -> None:
    from ktrdr.errors import DataError

    with pytest.raises(DataError, match=rf"start_date {start} lies outside 1900-2199"):
        build_run_spec(REAL, ["EURUSD"], ["1h"], start, "2017-02-28")
    with pytest.raises(DataError, match="end_date 9999-12-31 lies outside 1900-2199"):
        build_run_spec(REAL, ["EURUSD"], ["1h"], "2017-01-01", "9999-12-31")
