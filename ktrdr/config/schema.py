"""The strategy schema as pydantic models; unknown keys are errors everywhere.
See docs/strategy-reference.md.

Structure is checked here; what depends on the indicator registry (parameters, output columns,
which columns fuzzy sets may name) is checked by ``ktrdr.config.semantics``.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ktrdr.data.gaps import parse_max_gap
from ktrdr.data.timeframes import TIMEFRAMES
from ktrdr.data.validation import SYMBOL_PATTERN
from ktrdr.errors import DataError
from ktrdr.messages import show
from ktrdr.neural.limits import MAX_HIDDEN_LAYERS, MAX_LAYER_WIDTH
from ktrdr.settings import STRATEGY_NAME_PATTERN

_NAME = STRATEGY_NAME_PATTERN
_COLUMN = r"^[A-Za-z][A-Za-z0-9_]*$"


class _Strict(BaseModel):
    # NaN and inf pass every range check (comparisons with NaN are False); refuse them outright.
    # strict: true is not the integer 1 (--set training.epochs=true), "5" is not a number.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class TrainingDataConfig(_Strict):
    symbols: list[Annotated[str, Field(pattern=SYMBOL_PATTERN)]] = Field(min_length=1)
    timeframes: list[str] = Field(min_length=1)
    # The longest stretch without bars that is a normal closure, e.g. "7d"; None: the longer of 4
    # days and 10 bars (ktrdr.data.gaps).
    max_gap: str | None = None

    @field_validator("max_gap")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_max_gap(value)
            except DataError as exc:
                raise ValueError(str(exc).removeprefix("max_gap=")) from None
        return value

    @field_validator("timeframes")
    @classmethod
    def _known_timeframes(cls, value: list[str]) -> list[str]:
        for timeframe in value:
            if timeframe not in TIMEFRAMES:
                raise ValueError(
                    f"unknown timeframe {show(timeframe)}; use one of {', '.join(TIMEFRAMES)}"
                )
        if len(set(value)) != len(value):
            raise ValueError("timeframes are listed more than once")
        return value

    @field_validator("symbols")
    @classmethod
    def _unique_symbols(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("symbols are listed more than once")
        return value


class IndicatorConfig(BaseModel):
    """``name`` and ``type`` plus flat parameters, checked against the registry later."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(pattern=_COLUMN, max_length=40)
    type: str


# Each fuzzy shape: its parameters and the rule they follow (the reference is built from this).
MEMBERSHIP_SHAPES = {
    "triangular": ("[a, b, c]", "a <= b <= c, a < c; 1 at b, 0 outside [a, c]"),
    "trapezoidal": ("[a, b, c, d]", "a <= b <= c <= d, a < d; 1 on [b, c], 0 outside [a, d]"),
    "gaussian": ("[mean, sigma]", "sigma > 0; 1 at the mean"),
}


class MembershipConfig(_Strict):
    type: Literal["triangular", "trapezoidal", "gaussian"]
    parameters: list[float]

    @model_validator(mode="after")
    def _shape(self) -> MembershipConfig:
        p = self.parameters
        names = MEMBERSHIP_SHAPES[self.type][0]
        expected = names.count(",") + 1
        if len(p) != expected:
            raise ValueError(f"{self.type} takes {expected} parameters {names}, got {len(p)}")
        if self.type == "gaussian":
            if p[1] <= 0:
                raise ValueError(f"gaussian sigma must be > 0, got {p[1]}")
        elif any(a > b for a, b in itertools.pairwise(p)):
            letters = "a <= b <= c" if self.type == "triangular" else "a <= b <= c <= d"
            raise ValueError(f"{self.type} parameters must satisfy {letters}, got {p}")
        elif p[0] == p[-1]:
            raise ValueError(f"{self.type} set has zero width: {p}")
        return self


class ArchitectureConfig(_Strict):
    hidden_layers: list[Annotated[int, Field(ge=1, le=MAX_LAYER_WIDTH)]] = Field(
        min_length=1, max_length=MAX_HIDDEN_LAYERS
    )
    activation: Literal["relu", "tanh", "gelu", "leaky_relu"] = "relu"
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class FeaturesConfig(_Strict):
    lookback_periods: int = Field(default=0, ge=0, le=500)
    include_price_context: bool = False
    scale_features: bool = True


class ModelConfig(_Strict):
    type: Literal["mlp"] = "mlp"
    architecture: ArchitectureConfig
    features: FeaturesConfig = FeaturesConfig()


class LabelsConfig(_Strict):
    source: Literal["zigzag"] = "zigzag"
    zigzag_threshold: float = Field(gt=0.0, lt=1.0)
    label_lookahead: int = Field(ge=1, le=10_000)


class DataSplitConfig(_Strict):
    train: float = Field(gt=0.0, lt=1.0)
    validation: float = Field(gt=0.0, lt=1.0)
    test: float = Field(gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> DataSplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"train + validation + test must be 1, got {total:.10g}")
        return self


class PlateauScheduler(_Strict):
    type: Literal["plateau"]
    factor: float = Field(default=0.5, gt=0.0, lt=1.0)
    patience: int = Field(default=5, ge=0)
    min_lr: float = Field(default=0.0, ge=0.0)


class CosineScheduler(_Strict):
    type: Literal["cosine"]
    t_max: int | None = Field(default=None, ge=1)
    eta_min: float = Field(default=0.0, ge=0.0)


class StepScheduler(_Strict):
    type: Literal["step"]
    step_size: int = Field(default=10, ge=1)
    gamma: float = Field(default=0.1, gt=0.0, le=1.0)


SchedulerConfig = Annotated[
    PlateauScheduler | CosineScheduler | StepScheduler, Field(discriminator="type")
]


class EarlyStoppingConfig(_Strict):
    patience: int = Field(default=10, ge=1)
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    min_delta: float = Field(default=0.0001, ge=0.0)


class FeatureImportanceConfig(_Strict):
    repeats: int = Field(default=5, ge=1, le=100)


class TrainingConfig(_Strict):
    epochs: int = Field(default=100, ge=1, le=100_000)
    batch_size: int = Field(default=32, ge=1, le=1_000_000)
    learning_rate: float = Field(default=0.001, gt=0.0, le=10.0)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    weight_decay: float = Field(default=0.0, ge=0.0)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    class_weights: (
        Literal["balanced"] | Annotated[list[float], Field(min_length=3, max_length=3)] | None
    ) = None
    lr_scheduler: SchedulerConfig | None = None
    early_stopping: EarlyStoppingConfig | None = None
    feature_importance: FeatureImportanceConfig = FeatureImportanceConfig()
    labels: LabelsConfig
    data_split: DataSplitConfig | None = None

    @field_validator("class_weights")
    @classmethod
    def _positive_weights(cls, value: Any) -> Any:
        if isinstance(value, list) and any(w <= 0 for w in value):
            raise ValueError(f"class weights [w_buy, w_hold, w_sell] must all be > 0, got {value}")
        return value


class StrategyConfig(_Strict):
    name: str = Field(pattern=_NAME, max_length=100)
    description: str = ""
    version: str | None = None
    training_data: TrainingDataConfig
    indicators: list[IndicatorConfig] = Field(min_length=1)
    fuzzy_sets: dict[
        Annotated[str, Field(pattern=_COLUMN)],
        Annotated[
            dict[Annotated[str, Field(pattern=_COLUMN)], MembershipConfig], Field(min_length=1)
        ],
    ] = Field(min_length=1)
    model: ModelConfig
    training: TrainingConfig
