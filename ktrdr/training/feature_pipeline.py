"""The one feature path shared by training and prediction: steps 2-4 for one symbol.

It never imports label generation: prediction runs on the newest bars, where no label can exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from ktrdr.training.feature_engineering import engineer_features
from ktrdr.training.fuzzy_generation import generate_fuzzy_memberships
from ktrdr.training.indicator_calculation import calculate_indicators


def build_features(
    bars: Mapping[str, pd.DataFrame],
    strategy_config: Mapping[str, Any],
    *,
    symbol: str = "",
    start_date: str | pd.Timestamp | None = None,
    end_date: str | pd.Timestamp | None = None,
    on_stale: Literal["drop", "raise"] = "drop",
) -> pd.DataFrame:
    """Indicators, memberships and the feature matrix of one symbol's bars (see each step)."""
    indicators = calculate_indicators(bars, strategy_config, symbol=symbol)
    fuzzy = generate_fuzzy_memberships(indicators, strategy_config)
    return engineer_features(
        fuzzy,
        indicators,
        bars,
        strategy_config,
        start_date=start_date,
        end_date=end_date,
        on_stale=on_stale,
        symbol=symbol,
    )
