"""What a training run would train and test on, without training: steps 1-6 only.

``ktrdr strategies validate --preview`` uses it to show label shares, split sizes and the split
warnings before anyone spends minutes on step 7.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ktrdr.config.features import feature_history_bars, indicator_history_bars
from ktrdr.data.timeframes import base_timeframe
from ktrdr.training.data_loading import load_training_data
from ktrdr.training.data_split import SPLITS, split_data
from ktrdr.training.feature_pipeline import build_features
from ktrdr.training.label_generation import generate_labels


def preview_training_data(
    strategy_config: Mapping[str, Any],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    start_date: str,
    end_date: str,
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Splits (first and last bar, rows, class counts and shares), features and warnings.

    Runs the same step functions as training up to the split. Raises what those steps raise.
    """
    base = base_timeframe(timeframes)
    history = indicator_history_bars(strategy_config) + feature_history_bars(strategy_config)
    bars = load_training_data(
        symbols, timeframes, start_date, end_date, data_dir=data_dir, history_bars=history
    )
    per_symbol = {
        symbol: (
            build_features(
                bars[symbol],
                strategy_config,
                symbol=symbol,
                start_date=start_date,
                end_date=end_date,
            ),
            generate_labels(bars[symbol][base], strategy_config, timeframe=base),
        )
        for symbol in symbols
    }
    splits = split_data(per_symbol, strategy_config)
    summary = {}
    for name in SPLITS:
        counts = splits.class_counts[name]["all"]
        total = sum(counts.values())
        bounds = [b for b in splits.boundaries[name].values() if b["rows"]]
        summary[name] = {
            "start": min(b["start"] for b in bounds),
            "end": max(b["end"] for b in bounds),
            "rows": total,
            "class_counts": counts,
            "class_shares": {c: round(n / total, 4) for c, n in counts.items()},
            "per_symbol": {
                s: {**splits.boundaries[name][s], "class_counts": splits.class_counts[name][s]}
                for s in symbols
            },
        }
    return {
        "symbols": list(symbols),
        "timeframes": list(timeframes),
        "features": len(splits.feature_names),
        "splits": summary,
        "warnings": list(splits.warnings),
    }
