"""The indicator registry: every indicator ktrdr knows, declared as data.

Each entry names its parameters (type, range, default, the TA-Lib argument it maps to), the bar
columns it reads, its output columns, whether its outputs are in price units (and so accept
``normalize: close``), whether it has memory (EMA-style recursion) and whether it needs volume.
Validation (``ktrdr.config``) and computation (``ktrdr.indicators.compute``) both read this table,
so a parameter cannot be accepted by one and ignored by the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import talib.abstract

from ktrdr.messages import show

SOURCES = ("open", "high", "low", "close", "volume")
NORMALIZE_CHOICES = ("none", "close")
# How a price-unit output is made scale-free with ``normalize: close``:
#   level      -> close / value - 1   (moving averages and bands: distance of price from the level)
#   difference -> value / close       (MACD, ATR: a price difference as a fraction of price)
PriceUnit = Literal["level", "difference"]


@dataclass(frozen=True)
class ParamSpec:
    """One configurable parameter: its YAML name, TA-Lib name, type, default and inclusive range."""

    name: str
    talib_names: tuple[str, ...]
    kind: type
    default: int | float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator type. ``outputs`` empty means one column named after the indicator."""

    type: str
    talib_function: str
    description: str
    params: tuple[ParamSpec, ...]
    # Bar columns passed to TA-Lib in order; "source" is replaced by the configured source column.
    inputs: tuple[str, ...]
    # Output suffix -> index of the TA-Lib output it comes from, or a derived output's name.
    outputs: Mapping[str, int | str] = field(default_factory=dict)
    price_units: Mapping[str, PriceUnit] = field(default_factory=dict)
    has_memory: bool = False
    needs_volume: bool = False
    constraints: tuple[Callable[[Mapping[str, Any]], str | None], ...] = ()
    # A parameter naming a window: the TA-Lib output is a running total, and the indicator is its
    # change over that many bars, so its value never depends on where loading started.
    difference_over: str | None = None

    @property
    def takes_source(self) -> bool:
        return "source" in self.inputs

    @property
    def takes_normalize(self) -> bool:
        return bool(self.price_units)

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    def output_columns(self, name: str) -> list[str]:
        """Column names this indicator produces when configured with ``name``."""
        if not self.outputs:
            return [name]
        return [f"{name}_{suffix}" for suffix in self.outputs]

    def talib_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """TA-Lib keyword arguments for resolved ``params`` (defaults already filled in)."""
        return {name: params[p.name] for p in self.params for name in p.talib_names}

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        """Bars before the first defined value (TA-Lib's own lookback for these parameters)."""
        function = talib.abstract.Function(self.talib_function)  # type: ignore[attr-defined]
        function.parameters = self.talib_params(params)
        window = int(params[self.difference_over]) if self.difference_over else 0
        return int(function.lookback) + window

    def stable_history_bars(self, params: Mapping[str, Any]) -> int:
        """Bars of history after which a value no longer depends on where the data started.

        Memoryless indicators need only their warm-up. Recursive ones (EMA, Wilder smoothing)
        forget their start geometrically; ten periods brings the start's weight below 1e-4.
        """
        warmup = self.warmup_bars(params)
        if not self.has_memory:
            return warmup
        periods = [int(params[p.name]) for p in self.params if p.kind is int]
        return warmup + 10 * max(periods, default=1)


def _period(
    name: str = "period", talib_name: str = "timeperiod", default: int = 14, minimum: int = 2
) -> ParamSpec:
    return ParamSpec(name, (talib_name,), int, default, minimum, 100_000)


def _fast_below_slow(params: Mapping[str, Any]) -> str | None:
    if params["fast_period"] >= params["slow_period"]:
        return "fast_period: must be < slow_period"
    return None


_SPECS = (
    IndicatorSpec(
        "rsi", "RSI", "Relative Strength Index, 0-100", (_period(),), ("source",), has_memory=True
    ),
    IndicatorSpec(
        "macd",
        "MACD",
        "Moving Average Convergence Divergence: line, signal and histogram",
        (
            _period("fast_period", "fastperiod", 12),
            _period("slow_period", "slowperiod", 26),
            _period("signal_period", "signalperiod", 9, minimum=1),
        ),
        ("source",),
        outputs={"line": 0, "signal": 1, "hist": 2},
        price_units={"line": "difference", "signal": "difference", "hist": "difference"},
        has_memory=True,
        constraints=(_fast_below_slow,),
    ),
    IndicatorSpec(
        "sma",
        "SMA",
        "Simple moving average",
        (_period(default=20),),
        ("source",),
        price_units={"": "level"},
    ),
    IndicatorSpec(
        "ema",
        "EMA",
        "Exponential moving average",
        (_period(default=20),),
        ("source",),
        price_units={"": "level"},
        has_memory=True,
    ),
    IndicatorSpec(
        "bbands",
        "BBANDS",
        "Bollinger Bands: upper, middle, lower, %B ((price-lower)/(upper-lower)) and bandwidth "
        "((upper-lower)/middle)",
        (_period(default=20), ParamSpec("std_dev", ("nbdevup", "nbdevdn"), float, 2.0, 0.1, 10.0)),
        ("source",),
        outputs={"upper": 0, "middle": 1, "lower": 2, "pctb": "pctb", "bandwidth": "bandwidth"},
        price_units={"upper": "level", "middle": "level", "lower": "level"},
    ),
    IndicatorSpec(
        "atr",
        "ATR",
        "Average True Range",
        (_period(),),
        ("high", "low", "close"),
        price_units={"": "difference"},
        has_memory=True,
    ),
    IndicatorSpec(
        "stoch",
        "STOCH",
        "Stochastic oscillator: %K and %D, 0-100",
        (
            _period("fastk_period", "fastk_period", 14, minimum=1),
            _period("slowk_period", "slowk_period", 3, minimum=1),
            _period("slowd_period", "slowd_period", 3, minimum=1),
        ),
        ("high", "low", "close"),
        outputs={"k": 0, "d": 1},
    ),
    IndicatorSpec(
        "williams_r", "WILLR", "Williams %R, -100-0", (_period(),), ("high", "low", "close")
    ),
    IndicatorSpec(
        "roc", "ROC", "Rate of change, percent", (_period(default=10, minimum=1),), ("source",)
    ),
    IndicatorSpec(
        "cci", "CCI", "Commodity Channel Index", (_period(default=20),), ("high", "low", "close")
    ),
    IndicatorSpec(
        "adx",
        "ADX",
        "Average Directional Index, 0-100",
        (_period(),),
        ("high", "low", "close"),
        has_memory=True,
    ),
    IndicatorSpec(
        "obv",
        "OBV",
        "On-balance volume over the last `period` bars: the volume of up-closes minus the volume "
        "of down-closes (the change of TA-Lib's running OBV, so independent of the first bar)",
        (ParamSpec("period", (), int, 20, 1, 100_000),),
        ("source", "volume"),
        needs_volume=True,
        difference_over="period",
    ),
    IndicatorSpec(
        "mfi",
        "MFI",
        "Money Flow Index, 0-100",
        (_period(),),
        ("high", "low", "close", "volume"),
        needs_volume=True,
    ),
)

REGISTRY: dict[str, IndicatorSpec] = {spec.type: spec for spec in _SPECS}


def get_spec(indicator_type: str) -> IndicatorSpec | None:
    """The registry entry for ``indicator_type``, or None if unknown."""
    return REGISTRY.get(indicator_type)


def resolve_params(
    spec: IndicatorSpec, given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Fill defaults into ``given`` and check it against ``spec``.

    Returns (resolved params, errors as (key, message) pairs). Resolved params hold every
    parameter, plus ``source`` and ``normalize`` where the indicator takes them.
    """
    errors: list[tuple[str, str]] = []
    resolved: dict[str, Any] = {}
    allowed = [p.name for p in spec.params]
    if spec.takes_source:
        allowed.append("source")
    if spec.takes_normalize:
        allowed.append("normalize")
    for key in given:
        if key not in allowed:
            choices = ", ".join(allowed) if allowed else "no parameters"
            errors.append((str(key)[:40], f"not a parameter of {spec.type} (it takes {choices})"))
    for param in spec.params:
        value = given.get(param.name, param.default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append((param.name, f"must be a number, got {show(value)}"))
            continue
        if not math.isfinite(value):
            errors.append((param.name, "must be a finite number (not NaN or infinity)"))
            continue
        if param.kind is int and float(value) != int(value):
            errors.append((param.name, f"must be a whole number, got {show(value)}"))
            continue
        value = param.kind(value)
        if not param.minimum <= value <= param.maximum:
            errors.append(
                (
                    param.name,
                    f"must be between {param.minimum:g} and {param.maximum:g}, got {show(value)}",
                )
            )
            continue
        resolved[param.name] = value
    if spec.takes_source:
        source = given.get("source", "close")
        if source not in SOURCES:
            errors.append(("source", f"must be one of {', '.join(SOURCES)}, got {show(source)}"))
        resolved["source"] = source
    if spec.takes_normalize:
        normalize = given.get("normalize", "none")
        if normalize not in NORMALIZE_CHOICES:
            errors.append(("normalize", f"must be none or close, got {show(normalize)}"))
        resolved["normalize"] = normalize
    if not errors:
        for constraint in spec.constraints:
            problem = constraint(resolved)
            if problem:
                key, _, message = problem.partition(": ")
                errors.append((key, message))
    return resolved, errors
