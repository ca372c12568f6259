"""The flag on and off give identical results: weights, metrics, names, importance (§9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.data.synthetic import write_synthetic_store
from ktrdr.store.model_artifact import state_dict_digest
from ktrdr.training.path_comparison import first_difference
from ktrdr.training.run_spec import build_run_spec
from ktrdr.training.train_strategy import StrategyTrainer
from tests.conftest import STRATEGIES_DIR

pytestmark = [pytest.mark.e2e]


def _both_paths(
    monkeypatch: pytest.MonkeyPatch,
    strategy: Path,
    symbols: list[str],
    timeframes: list[str],
    start: str,
    end: str,
    data_dir: Path,
    models_dir: Path,
) -> dict[str, tuple[str, dict]]:
    results = {}
    for flag in ("true", "false"):
        monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
        spec = build_run_spec(
            strategy, symbols, timeframes, start, end, data_dir=data_dir, models_dir=models_dir
        )
        run = StrategyTrainer().train(spec)
        results[flag] = (state_dict_digest(run.artifact.state_dict), run.result)
    return results


def test_real_strategy_same_results_both_ways(
    e2e_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    results = _both_paths(
        monkeypatch,
        STRATEGIES_DIR / "neuro_mean_reversion.yaml",
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-03-31",
        e2e_env["data_dir"],
        e2e_env["models_dir"],
    )
    (digest_on, on), (digest_off, off) = results["true"], results["false"]
    assert on["metadata"]["execution_path"] == "training_executor"
    assert off["metadata"]["execution_path"] == "strategy_trainer"
    assert digest_on == digest_off
    assert first_difference(on, off) is None
    assert on["metadata"]["weights_digest"]
    assert on["model_path"] != off["model_path"]


def test_multi_symbol_multi_timeframe_same_results_both_ways(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_synthetic_store(tmp_path, ["AAA", "BBB"], ["1h", "4h"], "2023-01-01", "2023-04-30")
    strategy = STRATEGIES_DIR / "trend_momentum_mtf.yaml"
    monkeypatch.setenv("KTRDR_DATA_DIR", str(tmp_path))
    results = _both_paths(
        monkeypatch,
        strategy,
        ["AAA", "BBB"],
        ["1h", "4h"],
        "2023-01-01",
        "2023-04-30",
        tmp_path,
        models_dir,
    )
    (digest_on, on), (digest_off, off) = results["true"], results["false"]
    assert digest_on == digest_off
    assert first_difference(on, off) is None
    assert on["metadata"]["weights_digest"]
    assert set(on["metadata"]["per_symbol_test_metrics"]) == {"AAA", "BBB"}


def test_a_symbol_without_test_rows_gives_the_same_result_both_ways(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BBB's bars end in March: on the one calendar every symbol shares, its rows all fall in the
    # training and validation periods, and it has no test rows at all.
    write_synthetic_store(tmp_path, ["AAA"], ["1h", "4h"], "2023-01-01", "2023-05-31")
    write_synthetic_store(tmp_path, ["BBB"], ["1h", "4h"], "2023-01-01", "2023-03-31")
    results = _both_paths(
        monkeypatch,
        STRATEGIES_DIR / "trend_momentum_mtf.yaml",
        ["AAA", "BBB"],
        ["1h", "4h"],
        "2023-01-01",
        "2023-05-31",
        tmp_path,
        models_dir,
    )
    (digest_on, on), (digest_off, off) = results["true"], results["false"]
    assert on["metadata"]["splits"]["test"]["per_symbol"]["BBB"]["rows"] == 0
    assert digest_on == digest_off
    assert first_difference(on, off) is None
    assert on["metadata"]["weights_digest"]
    per_symbol = on["metadata"]["per_symbol_test_metrics"]
    assert list(per_symbol) == ["AAA"]
    assert per_symbol == off["metadata"]["per_symbol_test_metrics"]
