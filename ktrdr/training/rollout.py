"""Which orchestration a run trains on: the flag, the rollout percentage and its run key.

``USE_TRAINING_EXECUTOR`` forces a path; unset, ``TRAINING_EXECUTOR_ROLLOUT_PERCENT`` sends that
share of run keys to ``TrainingExecutor`` and the rest to the reference orchestration inside
``StrategyTrainer``, except the strategies ``TRAINING_EXECUTOR_EXCLUDE`` names. Light on purpose
(no torch): a starter decides the path before any training is loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ktrdr import settings
from ktrdr.training.run_spec import EXECUTION_PATH, REFERENCE_PATH, RunSpec

# Mixed into every rollout hash: another flag rolled out the same way (with its own salt)
# draws its own cohort, never this one's.
ROLLOUT_SALT = "USE_TRAINING_EXECUTOR"


def rollout_key(
    config: Mapping[str, Any],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    start_date: str,
    end_date: str,
    overrides: Mapping[str, Any] | None = None,
) -> str:
    """The run key hashed for the rollout decision: strategy, symbols, timeframes, dates, seed
    and a digest of the overrides as resolved in ``config`` (so the members of a sweep that
    differ only in, say, the learning rate draw their paths apart)."""
    return (
        f"{config['name']}|{','.join(symbols)}|{','.join(timeframes)}|{start_date}|"
        f"{end_date}|{config['training']['seed']}|{overrides_digest(config, overrides)}"
    )


def overrides_digest(config: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> str:
    """The first 16 hex digits of the sha256 of the overridden keys with the values they took
    in ``config`` (canonical JSON), or ``-`` without overrides: ``"5"`` and ``5`` for an int
    key resolve alike, so they draw alike."""
    if not overrides:
        return "-"
    resolved = {key: _dotted(config, key) for key in sorted(overrides)}
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _dotted(config: Mapping[str, Any], key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None  # an override that removed a section
        value = value[part]
    return value


def rollout_bucket(key: str) -> int:
    """The run's bucket, 0-99: sha256 (never ``hash()``, which changes per process) of the salt
    and the key. A run takes the executor when its bucket is below the percentage, so raising
    the percentage only ever adds runs to the executor's cohort."""
    digest = hashlib.sha256(f"{ROLLOUT_SALT}|{key}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


def use_executor_for(key: str, strategy: str | None = None) -> bool:
    """The executor runs when the flag says so; with the flag unset, for ``percent``% of run
    keys, except for the strategies ``TRAINING_EXECUTOR_EXCLUDE`` names."""
    forced = settings.use_training_executor()
    if forced is not None:
        return forced
    percent = settings.rollout_percent()
    if strategy is not None and strategy in settings.rollout_exclusions():
        return False
    return rollout_bucket(key) < percent


def execution_path_for(spec: RunSpec) -> str:
    """The path ``spec`` trains on: ``USE_TRAINING_EXECUTOR`` where it runs when set (the
    instant rollback, and a host's own setting, win everywhere), else the path it was given
    (``spec.execution_path``, chosen where it was started), else the rollout's choice here."""
    forced = settings.use_training_executor()
    if forced is not None:
        return EXECUTION_PATH if forced else REFERENCE_PATH
    if spec.execution_path is not None:
        return spec.execution_path
    key = rollout_key(
        spec.strategy,
        spec.symbols,
        spec.timeframes,
        spec.start_date,
        spec.end_date,
        spec.overrides,
    )
    return EXECUTION_PATH if use_executor_for(key, spec.name) else REFERENCE_PATH
