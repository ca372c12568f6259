"""Request bodies of the host service (unknown keys are refused)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

SESSION_ID = r"^[A-Za-z0-9_-]{1,64}$"
SYMBOL = r"^[A-Za-z0-9._-]{1,20}$"
TIMEFRAME = r"^[0-9]{1,4}[a-zA-Z]{1,3}$"
MAX_STRATEGY_CHARS = 256 * 1024


class StartTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy_yaml: str = Field(min_length=1, max_length=MAX_STRATEGY_CHARS)
    symbols: list[Annotated[str, Field(pattern=SYMBOL)]] = Field(min_length=1, max_length=50)
    timeframes: list[Annotated[str, Field(pattern=TIMEFRAME)]] = Field(min_length=1, max_length=6)
    start_date: str = Field(min_length=4, max_length=40)
    end_date: str = Field(min_length=4, max_length=40)
    overrides: dict[str, Any] = Field(default_factory=dict, max_length=200)
    session_id: str | None = Field(default=None, pattern=SESSION_ID)
    callback_url: AnyHttpUrl | None = None
    threads: int | None = Field(default=None, ge=1, le=256)


class StopTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(pattern=SESSION_ID)
