"""Request bodies of the backend API (unknown keys are refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from ktrdr.async_infrastructure.status import TerminalStatus
from ktrdr.config.loader import MAX_STRATEGY_CHARS
from ktrdr.data.validation import SYMBOL_PATTERN, TIMEFRAME_PATTERN
from ktrdr.settings import STRATEGY_NAME_PATTERN
from ktrdr.training.run_spec import RUN_ID_PATTERN

STRATEGY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class StartTrainingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy_name: str | None = Field(default=None, pattern=STRATEGY_NAME)
    strategy_yaml: str | None = Field(default=None, min_length=1, max_length=MAX_STRATEGY_CHARS)
    symbols: list[Annotated[str, Field(pattern=SYMBOL_PATTERN)]] = Field(
        min_length=1, max_length=50
    )
    timeframes: list[Annotated[str, Field(pattern=TIMEFRAME_PATTERN)]] = Field(
        min_length=1, max_length=6
    )
    start_date: str = Field(min_length=4, max_length=40)
    end_date: str = Field(min_length=4, max_length=40)
    execution_mode: Literal["local", "host", "auto"] | None = None
    require_gpu: bool = False
    overrides: dict[str, Any] = Field(default_factory=dict, max_length=200)
    threads: int | None = Field(default=None, ge=1, le=256)

    @model_validator(mode="after")
    def _one_strategy(self) -> StartTrainingRequest:
        if (self.strategy_name is None) == (self.strategy_yaml is None):
            raise ValueError("give exactly one of strategy_name and strategy_yaml")
        return self


Percent = Annotated[StrictInt, Field(ge=0, le=100)]
ExcludedStrategy = Annotated[str, Field(pattern=STRATEGY_NAME_PATTERN, max_length=100)]


class RolloutConfig(BaseModel):
    """The rollout's settings that change at run time (any of them); the same checks for a
    request and for the file that keeps them."""

    model_config = ConfigDict(extra="forbid")

    rollout_percent: Percent | None = None
    shadow_percent: Percent | None = None
    executor_exclude: list[ExcludedStrategy] | None = Field(default=None, max_length=1000)


class TrainingConfig(RolloutConfig):
    """``PUT /trainings/config``: the default execution mode and the rollout's settings, at
    least one of them."""

    default_execution_mode: Literal["local", "host", "auto"] | None = None

    @model_validator(mode="after")
    def _something(self) -> TrainingConfig:
        if not self.model_fields_set:
            raise ValueError(
                "give at least one of default_execution_mode, rollout_percent, shadow_percent "
                "and executor_exclude"
            )
        if any(getattr(self, name) is None for name in self.model_fields_set):
            raise ValueError("a setting given cannot be null; leave it out to keep it")
        return self


class HostResult(BaseModel):
    """What the host posts to /trainings/results (and answers at /training/result)."""

    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(pattern=RUN_ID_PATTERN)
    status: TerminalStatus
    result: dict[str, Any] | None = None
    artifact: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
