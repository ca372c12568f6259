"""The sweep file: one strategy, a grid of overrides, symbol and timeframe sets.

```yaml
name: nmr_lr
strategy: strategies/neuro_mean_reversion.yaml   # relative to the sweep file's folder
start: 2017-01-01
end: 2017-12-31
symbol_sets: [[EURUSD]]             # default: the strategy's training_data.symbols
timeframe_sets: [[1h]]              # default: the strategy's training_data.timeframes
grid:                               # dotted keys, as --set takes them; full product
  training.learning_rate: [0.001, 0.003]
  training.seed: [1, 2]
fixed: {training.epochs: 20}        # overrides for every run
save: best                          # all | best | none
best_by: val_edge                   # see BEST_BY: validation only, never the test split
max_parallel: 2
threads_per_run: 1
```
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ktrdr.config.loader import parse_yaml_mapping, read_text_file
from ktrdr.data.validation import SYMBOL_PATTERN, TIMEFRAME_PATTERN
from ktrdr.errors import StrategyConfigError

# Metrics a sweep can rank by, and whether higher is better. Validation only: choosing the best
# of many runs by their test figures makes the chosen run's test figures optimistic, so the
# test split reports on the chosen run after selection and never chooses. ``val_edge`` is the
# best validation accuracy less the run's own better baseline on the validation split (its
# training majority, or the validation split's majority), so runs with different labels, and
# so different baselines, are compared fairly.
BEST_BY = {
    "val_edge": True,
    "val_accuracy": True,
    "val_loss": False,
}
MAX_SWEEP_BYTES = 256 * 1024


class SweepSpec(BaseModel):
    """A validated sweep file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    strategy: str = Field(min_length=1)
    start: str
    end: str
    symbol_sets: list[list[Annotated[str, Field(pattern=SYMBOL_PATTERN)]]] | None = Field(
        default=None, min_length=1
    )
    timeframe_sets: list[list[Annotated[str, Field(pattern=TIMEFRAME_PATTERN)]]] | None = Field(
        default=None, min_length=1
    )
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    fixed: dict[str, Any] = Field(default_factory=dict)
    save: Literal["all", "best", "none"] = "best"
    best_by: str = "val_edge"
    max_parallel: int = Field(default=1, ge=1, le=256)
    threads_per_run: int = Field(default=1, ge=1, le=256)

    @field_validator("best_by")
    @classmethod
    def _validation_metric(cls, value: str) -> str:
        if value in BEST_BY:
            return value
        if value.startswith("test_"):
            raise ValueError(
                f"{value!r} ranks the runs on the test split, which makes the chosen run's test "
                f"figures optimistic; rank by {', '.join(BEST_BY)} (the chosen run's test "
                "figures are reported after the choice)"
            )
        raise ValueError(f"{value!r} is not a metric a sweep ranks by; use {', '.join(BEST_BY)}")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date_text(cls, value: Any) -> Any:
        # YAML reads 2017-01-01 as a date; the trainer takes the text.
        return value.isoformat() if isinstance(value, dt.date) else value

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid key {key!r} has no values; give at least one")
        return grid

    @field_validator("symbol_sets", "timeframe_sets")
    @classmethod
    def _non_empty_sets(cls, sets: list[list[str]] | None) -> list[list[str]] | None:
        if sets is not None and any(not chosen for chosen in sets):
            raise ValueError("an empty set; every set needs at least one entry")
        return sets


def load_sweep(source: str | Path | dict[str, Any]) -> tuple[SweepSpec, Path]:
    """The sweep spec and the folder its relative paths start from.

    Raises StrategyConfigError naming the file and the key path of every problem.
    """
    if isinstance(source, dict):
        raw: Any = source
        name, base = "<sweep>", Path.cwd()
    else:
        path = Path(source)
        name, base = str(path), path.parent
        text = read_text_file(path, MAX_SWEEP_BYTES, name, "sweep")
        raw = parse_yaml_mapping(text, name, "sweep", "name:, strategy:, grid:, ...")
    if not isinstance(raw, dict):
        raise StrategyConfigError(f"{name}: a sweep file is a YAML mapping")
    try:
        return SweepSpec.model_validate(raw), base
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown key; valid keys: {', '.join(SweepSpec.model_fields)}"
            elif error["type"] == "missing":
                message = "required key is missing"
            problems.append(f"{where}: {message}" if where else message)
        raise StrategyConfigError(f"{name}: {'; '.join(problems)}") from None
