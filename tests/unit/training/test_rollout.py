"""The rollout decision: the flag, the salted run key, the percentage, the exclusions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrdr.config import load_strategy_config
from ktrdr.errors import StrategyConfigError
from ktrdr.training.rollout import (
    execution_path_for,
    overrides_digest,
    rollout_bucket,
    rollout_key,
    use_executor_for,
)
from ktrdr.training.train_strategy import StrategyTrainer
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 1})


def test_rollout_uses_sha256_of_the_salted_run_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = rollout_key(REAL, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31")
    assert key == "neuro_mean_reversion|EURUSD|1h|2017-01-01|2017-03-31|42|-"
    salted = f"USE_TRAINING_EXECUTOR|{key}"
    bucket = int(hashlib.sha256(salted.encode()).hexdigest()[:8], 16) % 100
    assert rollout_bucket(key) == bucket
    assert use_executor_for(key) is False  # unset flag, 0%
    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", str(bucket + 1))
    assert use_executor_for(key) is True
    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", str(bucket))
    assert use_executor_for(key) is False
    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", "100")
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", "false")  # the flag wins over the percentage
    assert use_executor_for(key) is False
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", "maybe")
    with pytest.raises(StrategyConfigError, match="USE_TRAINING_EXECUTOR"):
        use_executor_for(key)


def test_the_key_holds_the_resolved_overrides_so_a_sweep_draws_its_members_apart() -> None:
    # Every member of a one-seed learning-rate sweep had one key, so all took one path.
    keys = set()
    for rate in (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016):
        overrides = {"training.learning_rate": rate}
        config = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", overrides)
        keys.add(rollout_key(config, ["EURUSD"], ["1h"], "2017-01-01", "2017-12-31", overrides))
    assert len(keys) == 6
    assert len({rollout_bucket(k) for k in keys}) > 1
    # The digest is of the overrides as resolved, in key order: the order they were given in
    # does not move a run to another path.
    both = {"training.learning_rate": 0.002, "training.epochs": 7}
    config = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", both)
    reordered = dict(reversed(list(both.items())))
    assert overrides_digest(config, both) == overrides_digest(config, reordered)
    assert overrides_digest(config, both) != overrides_digest(config, {"training.epochs": 7})


@given(
    keys=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=40, unique=True),
    low=st.integers(0, 100),
    high=st.integers(0, 100),
)
@settings(max_examples=60, deadline=None)
def test_raising_the_percentage_only_ever_adds_runs_to_the_executor_cohort(
    keys: list[str], low: int, high: int
) -> None:
    low, high = sorted((low, high))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("USE_TRAINING_EXECUTOR", raising=False)
        patch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", str(low))
        before = {k for k in keys if use_executor_for(k)}
        patch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", str(high))
        after = {k for k in keys if use_executor_for(k)}
    assert before <= after
    if high == 100:
        assert after == set(keys)
    if low == 0:
        assert before == set()


def test_the_salt_draws_another_cohort_than_an_unsalted_hash() -> None:
    # Without a salt a second flag rolled out by the same hash picks the very same runs.
    keys = [f"run-{i}" for i in range(400)]
    unsalted = {k for k in keys if int(hashlib.sha256(k.encode()).hexdigest()[:8], 16) % 100 < 30}
    salted = {k for k in keys if rollout_bucket(k) < 30}
    assert 0.2 < len(salted & unsalted) / len(salted) < 0.45  # about 30%: independent draws


def test_excluded_strategies_stay_on_the_reference_path(monkeypatch: pytest.MonkeyPatch) -> None:
    key = rollout_key(REAL, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31")
    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", "100")
    monkeypatch.setenv("TRAINING_EXECUTOR_EXCLUDE", "other, neuro_mean_reversion")
    assert use_executor_for(key, "neuro_mean_reversion") is False
    assert use_executor_for(key, "trend_momentum_mtf") is True
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", "true")  # forced for every run, by hand
    assert use_executor_for(key, "neuro_mean_reversion") is True
    monkeypatch.delenv("USE_TRAINING_EXECUTOR")
    monkeypatch.setenv("TRAINING_EXECUTOR_EXCLUDE", "../etc")
    with pytest.raises(StrategyConfigError, match=r"TRAINING_EXECUTOR_EXCLUDE names '\.\./etc'"):
        use_executor_for(key, "neuro_mean_reversion")


def test_a_path_chosen_where_the_run_started_is_the_one_it_trains_on(
    sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from ktrdr.training.run_spec import build_run_spec

    monkeypatch.setenv("TRAINING_EXECUTOR_ROLLOUT_PERCENT", "100")
    spec = build_run_spec(
        REAL, ["EURUSD"], ["1h"], "2017-01-01", "2017-02-28", save=False, data_dir=sample_data_dir
    )
    assert execution_path_for(spec) == "training_executor"
    chosen = dataclasses.replace(spec, execution_path="strategy_trainer")
    assert execution_path_for(chosen) == "strategy_trainer"
    run = StrategyTrainer().train(chosen)
    assert run.result["metadata"]["execution_path"] == "strategy_trainer"


def test_rollout_share_is_close_to_the_percentage() -> None:
    import os

    os.environ["TRAINING_EXECUTOR_ROLLOUT_PERCENT"] = "30"
    try:
        chosen = sum(use_executor_for(f"run-{i}") for i in range(2000))
    finally:
        del os.environ["TRAINING_EXECUTOR_ROLLOUT_PERCENT"]
    assert 500 <= chosen <= 700
