"""Step 6a: chronological, purged, per-symbol train/validation/test split (DESIGN.md §3, §6).

Each symbol's labelled feature rows are cut in time order by the configured fractions; the first
L rows (L = label_lookahead) of validation and of test are then dropped, so that no training label
window (bars t+1..t+L) reaches a validation bar, and no validation window reaches a test bar.
Symbols are split separately and concatenated, so no symbol's rows cross splits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.errors import DataError, StrategyConfigError
from ktrdr.training.label_generation import CLASS_NAMES

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT = {"train": 0.7, "validation": 0.15, "test": 0.15}


@dataclass(frozen=True)
class SplitPart:
    """Features and labels of one split, indexed by (symbol, timestamp)."""

    features: pd.DataFrame
    labels: pd.Series

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DataSplits:
    """The three splits plus, per symbol, their date boundaries and class counts."""

    train: SplitPart
    validation: SplitPart
    test: SplitPart
    feature_names: tuple[str, ...]
    symbols: tuple[str, ...]
    purge_rows: int
    # boundaries[split][symbol] = {"start", "end", "rows"}; class_counts[split][symbol] and
    # class_counts[split]["all"] = {"BUY": n, "HOLD": n, "SELL": n}
    boundaries: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    class_counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def part(self, name: str) -> SplitPart:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


def split_fractions(
    strategy_config: Mapping[str, Any], validation_split: float | None = None
) -> dict[str, float]:
    """The train/validation/test fractions: the strategy's ``data_split``, else from
    ``validation_split`` (train = 1-2v, validation = test = v), else 0.7/0.15/0.15.

    Raises StrategyConfigError when ``validation_split`` contradicts ``data_split`` or is out of
    range.
    """
    configured = strategy_config["training"].get("data_split")
    if validation_split is not None and not 0 < validation_split < 0.5:
        raise StrategyConfigError(
            f"validation_split={validation_split} must be between 0 and 0.5 (exclusive)"
        )
    if configured:
        if validation_split is not None and abs(configured["validation"] - validation_split) > 1e-9:
            raise StrategyConfigError(
                f"validation_split={validation_split} contradicts training.data_split.validation="
                f"{configured['validation']}; drop one of them"
            )
        return {name: float(configured[name]) for name in SPLITS}
    if validation_split is not None:
        return {
            "train": 1 - 2 * validation_split,
            "validation": validation_split,
            "test": validation_split,
        }
    return dict(DEFAULT_SPLIT)


def split_data(
    per_symbol: Mapping[str, tuple[pd.DataFrame, pd.Series]],
    strategy_config: Mapping[str, Any],
    *,
    validation_split: float | None = None,
) -> DataSplits:
    """Join each symbol's features and labels on timestamp, split it in time, concatenate.

    Raises DataError when a split comes out empty (naming the symbol and why), when symbols have
    different feature columns, or when the training split holds fewer than two classes.
    """
    if not per_symbol:
        raise DataError("split_data: no symbols given")
    fractions = split_fractions(strategy_config, validation_split)
    purge = int(strategy_config["training"]["labels"]["label_lookahead"])
    parts: dict[str, list[tuple[pd.DataFrame, pd.Series]]] = {name: [] for name in SPLITS}
    boundaries: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SPLITS}
    names: list[str] | None = None
    for symbol, (features, labels) in per_symbol.items():
        if names is None:
            names = list(features.columns)
        elif list(features.columns) != names:
            raise DataError(
                f"split_data: {symbol}'s feature columns differ from the first symbol's"
            )
        x, y = _join_on_timestamp(features, labels, symbol)
        for name, (start, stop) in _cuts(len(y), fractions, purge, symbol).items():
            px, py = x.iloc[start:stop], y.iloc[start:stop]
            parts[name].append((px, py))
            boundaries[name][symbol] = {
                "start": px.index[0].isoformat(),
                "end": px.index[-1].isoformat(),
                "rows": len(py),
            }
    assert names is not None
    symbols = tuple(per_symbol)
    built = {name: _concat(parts[name], symbols, names) for name in SPLITS}
    counts = {name: _class_counts(built[name], symbols) for name in SPLITS}
    present = [c for c, n in counts["train"]["all"].items() if n > 0]
    if len(present) < 2:
        raise DataError(
            f"the training split holds only {', '.join(present) or 'no'} labels; adjust "
            "training.labels (zigzag_threshold, label_lookahead) or load a longer range"
        )
    logger.info(
        "split rows: train %d, validation %d, test %d (purge %d rows per boundary)",
        len(built["train"]),
        len(built["validation"]),
        len(built["test"]),
        purge,
    )
    return DataSplits(
        train=built["train"],
        validation=built["validation"],
        test=built["test"],
        feature_names=tuple(names),
        symbols=symbols,
        purge_rows=purge,
        boundaries=boundaries,
        class_counts=counts,
    )


def _join_on_timestamp(
    features: pd.DataFrame, labels: pd.Series, symbol: str
) -> tuple[pd.DataFrame, pd.Series]:
    """The rows whose timestamp has both features and a label (never matched by position)."""
    for name, index in (("features", features.index), ("labels", labels.index)):
        if (
            not isinstance(index, pd.DatetimeIndex)
            or not index.is_monotonic_increasing
            or index.has_duplicates
        ):
            raise DataError(f"split_data: {symbol}'s {name} need a sorted, unique time index")
    feature_times = pd.DatetimeIndex(features.index).as_unit("ns").asi8
    label_times = pd.DatetimeIndex(labels.index).as_unit("ns").asi8
    position = np.searchsorted(label_times, feature_times)
    inside = position < len(label_times)
    matched = np.zeros(len(feature_times), dtype=bool)
    matched[inside] = label_times[position[inside]] == feature_times[inside]
    x = features[matched] if not matched.all() else features
    y = pd.Series(labels.to_numpy()[position[matched]], index=x.index, name="label")
    return x, y.astype("int8")


def _cuts(
    rows: int, fractions: Mapping[str, float], purge: int, symbol: str
) -> dict[str, tuple[int, int]]:
    train_end = int(np.floor(rows * fractions["train"]))
    validation_end = train_end + int(np.floor(rows * fractions["validation"]))
    cuts = {
        "train": (0, train_end),
        "validation": (train_end + purge, validation_end),
        "test": (validation_end + purge, rows),
    }
    for name, (start, stop) in cuts.items():
        if stop <= start:
            raise DataError(
                f"{symbol}: the {name} split is empty: {rows} labelled rows split "
                f"{fractions['train']:g}/{fractions['validation']:g}/{fractions['test']:g} with a "
                f"purge gap of {purge} rows leave none; load a longer range or reduce "
                "label_lookahead"
            )
    return cuts


def _concat(
    chunks: list[tuple[pd.DataFrame, pd.Series]], symbols: tuple[str, ...], names: list[str]
) -> SplitPart:
    features = pd.concat([x for x, _ in chunks], keys=list(symbols), names=["symbol", "timestamp"])
    labels = pd.concat([y for _, y in chunks], keys=list(symbols), names=["symbol", "timestamp"])
    features = features[names]
    labels.name = "label"
    return SplitPart(features=features, labels=labels.astype("int8"))


def _class_counts(part: SplitPart, symbols: tuple[str, ...]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    values = part.labels.to_numpy()
    owners = part.labels.index.get_level_values("symbol")
    for symbol in (*symbols, "all"):
        mine = values if symbol == "all" else values[owners == symbol]
        tally = np.bincount(mine.astype(np.int64), minlength=3)
        counts[symbol] = {name: int(tally[i]) for i, name in enumerate(CLASS_NAMES)}
    return counts
