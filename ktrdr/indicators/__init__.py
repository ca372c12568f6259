"""Technical indicators: a declarative, TA-Lib backed registry (config -> columns)."""

from ktrdr.indicators.registry import REGISTRY, IndicatorSpec, ParamSpec, get_spec

__all__ = ["REGISTRY", "IndicatorSpec", "ParamSpec", "get_spec"]
