"""What a strategy's configuration implies about its features, before any bar is read.

The feature names a model consumes and how much history its indicators and lags need follow
from the strategy alone. Training (steps 1, 4 and 10), the model store (a saved version's
config must imply its manifest's names) and prediction all ask here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ktrdr.data.timeframes import sort_timeframes
from ktrdr.indicators.registry import REGISTRY


def feature_options(strategy_config: Mapping[str, Any]) -> tuple[int, bool]:
    """(lookback periods, whether price context is on) of the strategy's features."""
    features = strategy_config["model"]["features"]
    return int(features["lookback_periods"]), bool(features["include_price_context"])


def current_feature_names(strategy_config: Mapping[str, Any]) -> list[str]:
    """The names of one bar's features on one timeframe, before lags."""
    lookback, price_context = feature_options(strategy_config)
    names = [
        f"{column}_{name}"
        for column, sets in strategy_config["fuzzy_sets"].items()
        for name in sets
    ]
    if price_context:
        names += ["ret_1"] + ([f"ret_{lookback}"] if lookback >= 2 else []) + ["range_hl", "body"]
    return names


def feature_names(strategy_config: Mapping[str, Any], timeframes: Sequence[str]) -> list[str]:
    """The ordered feature names for ``timeframes``: memberships then price context, lags after
    them, each timeframe's block prefixed with it when there are several."""
    lookback, _ = feature_options(strategy_config)
    current = current_feature_names(strategy_config)
    block = current + [f"{name}_lag_{k}" for k in range(1, lookback + 1) for name in current]
    ordered = sort_timeframes(timeframes)
    if len(ordered) == 1:
        return block
    return [f"{timeframe}_{name}" for timeframe in ordered for name in block]


def feature_history_bars(strategy_config: Mapping[str, Any]) -> int:
    """Extra bars the feature step needs before a row is complete (lags and returns)."""
    lookback, price_context = feature_options(strategy_config)
    return max(lookback, 1 if price_context else 0)


def indicator_history_bars(strategy_config: Mapping[str, Any]) -> int:
    """Bars of history after which every indicator of the strategy is stable.

    See docs/architecture.md: the artifact and the store.
    """
    return max(
        (REGISTRY[i["type"]].stable_history_bars(i) for i in strategy_config["indicators"]),
        default=0,
    )


def indicator_warmup_bars(strategy_config: Mapping[str, Any]) -> int:
    """Bars before every indicator of the strategy has its first value."""
    return max(
        (REGISTRY[i["type"]].warmup_bars(i) for i in strategy_config["indicators"]), default=0
    )
