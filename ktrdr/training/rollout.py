"""Which orchestration a run trains on: the flag, the rollout percentage and its run key.

``USE_TRAINING_EXECUTOR`` forces a path; unset, ``TRAINING_EXECUTOR_ROLLOUT_PERCENT`` sends that
share of run keys to ``TrainingExecutor`` and the rest to the reference orchestration inside
``StrategyTrainer``, except the strategies ``TRAINING_EXECUTOR_EXCLUDE`` names, and
``TRAINING_EXECUTOR_SHADOW_PERCENT`` samples the runs that also train on the other path as a
shadow. A service holds these as ``RolloutSettings`` it can change at run time. Light on purpose
(no torch): a starter decides the path before any training is loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ktrdr import settings
from ktrdr.training.run_spec import EXECUTION_PATH, REFERENCE_PATH, RunSpec

# Mixed into every rollout hash: another flag rolled out the same way (with its own salt)
# draws its own cohort, never this one's.
ROLLOUT_SALT = "USE_TRAINING_EXECUTOR"
# The shadow sample's own salt: which runs are shadowed does not follow which took the executor.
SHADOW_SALT = "TRAINING_EXECUTOR_SHADOW_PERCENT"


@dataclass(frozen=True)
class RolloutSettings:
    """The rollout's three settings: the executor's percentage of run keys, the percentage
    shadowed on the other path, and the strategies kept on the reference path."""

    percent: int = 0
    shadow_percent: int = 0
    exclusions: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_environment(cls) -> RolloutSettings:
        """``TRAINING_EXECUTOR_ROLLOUT_PERCENT``, ``TRAINING_EXECUTOR_SHADOW_PERCENT`` and
        ``TRAINING_EXECUTOR_EXCLUDE`` as they are now. Raises StrategyConfigError naming the
        variable whose value is not valid."""
        return cls(
            settings.rollout_percent(),
            settings.shadow_percent(),
            settings.rollout_exclusions(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rollout_percent": self.percent,
            "shadow_percent": self.shadow_percent,
            "executor_exclude": sorted(self.exclusions),
        }


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


def rollout_bucket(key: str, salt: str = ROLLOUT_SALT) -> int:
    """The run's bucket, 0-99: sha256 (never ``hash()``, which changes per process) of the salt
    and the key. A run takes the executor when its bucket is below the percentage, so raising
    the percentage only ever adds runs to the executor's cohort."""
    digest = hashlib.sha256(f"{salt}|{key}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


def use_executor_for(
    key: str, strategy: str | None = None, rollout: RolloutSettings | None = None
) -> bool:
    """The executor runs when the flag says so; with the flag unset, for the rollout's
    percentage of run keys, except for the strategies it excludes. ``rollout`` defaults to
    the environment's settings."""
    forced = settings.use_training_executor()
    if forced is not None:
        return forced
    rollout = rollout or RolloutSettings.from_environment()
    if strategy is not None and strategy in rollout.exclusions:
        return False
    return rollout_bucket(key) < rollout.percent


def spec_rollout_key(spec: RunSpec) -> str:
    """``rollout_key`` of a run spec."""
    return rollout_key(
        spec.strategy, spec.symbols, spec.timeframes, spec.start_date, spec.end_date, spec.overrides
    )


def execution_path_for(spec: RunSpec, rollout: RolloutSettings | None = None) -> str:
    """The path ``spec`` trains on: ``USE_TRAINING_EXECUTOR`` where it runs when set (the
    instant rollback, and a host's own setting, win everywhere), else the path it was given
    (``spec.execution_path``, chosen where it was started), else the choice of ``rollout``
    (the environment's settings by default)."""
    forced = settings.use_training_executor()
    if forced is not None:
        return EXECUTION_PATH if forced else REFERENCE_PATH
    if spec.execution_path is not None:
        return spec.execution_path
    chosen = use_executor_for(spec_rollout_key(spec), spec.name, rollout)
    return EXECUTION_PATH if chosen else REFERENCE_PATH


def shadow_sampled(spec: RunSpec, percent: int) -> bool:
    """True for the ``percent``% of run keys that also train on the other path as a shadow
    (never while ``USE_TRAINING_EXECUTOR`` forces one path: the worker would train the shadow
    on the forced path too). Raising the percentage only adds runs to the sample."""
    if percent <= 0 or settings.use_training_executor() is not None:
        return False
    return rollout_bucket(spec_rollout_key(spec), SHADOW_SALT) < percent


def other_path(path: str) -> str:
    """The execution path that is not ``path``."""
    return REFERENCE_PATH if path == EXECUTION_PATH else EXECUTION_PATH
