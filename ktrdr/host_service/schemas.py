"""Request bodies of the host service (unknown keys are refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from ktrdr.config.loader import MAX_STRATEGY_CHARS
from ktrdr.data.validation import SYMBOL_PATTERN, TIMEFRAME_PATTERN
from ktrdr.training.run_spec import RUN_ID_PATTERN


class StartTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy_yaml: str = Field(min_length=1, max_length=MAX_STRATEGY_CHARS)
    symbols: list[Annotated[str, Field(pattern=SYMBOL_PATTERN)]] = Field(
        min_length=1, max_length=50
    )
    timeframes: list[Annotated[str, Field(pattern=TIMEFRAME_PATTERN)]] = Field(
        min_length=1, max_length=6
    )
    start_date: str = Field(min_length=4, max_length=40)
    end_date: str = Field(min_length=4, max_length=40)
    overrides: dict[str, Any] = Field(default_factory=dict, max_length=200)
    session_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)
    callback_url: AnyHttpUrl | None = None
    threads: int | None = Field(default=None, ge=1, le=256)
    # The orchestration the backend chose for this run (its rollout); None: the host's own.
    execution_path: Literal["training_executor", "strategy_trainer"] | None = None


class StopTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(pattern=RUN_ID_PATTERN)
