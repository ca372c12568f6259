"""Request bodies of the backend API (unknown keys are refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ktrdr.async_infrastructure.status import TerminalStatus
from ktrdr.config.loader import MAX_STRATEGY_CHARS
from ktrdr.data.validation import SYMBOL_PATTERN, TIMEFRAME_PATTERN
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


class TrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_execution_mode: Literal["local", "host", "auto"]


class HostResult(BaseModel):
    """What the host posts to /trainings/results (and answers at /training/result)."""

    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(pattern=RUN_ID_PATTERN)
    status: TerminalStatus
    result: dict[str, Any] | None = None
    artifact: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
