"""Step 6a: chronological, purged train/validation/test split on one calendar.

The cut times come from the union of every symbol's labelled timestamps, split in time order by the
configured fractions, and apply to every symbol alike: no symbol trains on a period that another
symbol validates or tests on (correlated pairs would leak otherwise). At each cut, rows are purged
until every symbol's last label window before the cut has ended: a validation row must open after
bar t+L (L = label_lookahead) of the last training row t of *every* symbol, and likewise for test
after validation. For each symbol that drops at least L of its own rows at each cut. Symbols whose
history starts late, or ends early, simply have fewer (or no) rows in a split.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.errors import DataError, StrategyConfigError
from ktrdr.neural.classes import CLASS_NAMES
from ktrdr.training.feature_engineering import FEATURE_DTYPE
from ktrdr.training.memory import return_freed_memory

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT = {"train": 0.7, "validation": 0.15, "test": 0.15}
# A split where one class holds more than this share teaches (or tests) little but that class.
DOMINANT_SHARE = 0.90
# Fewer test rows of a class than this make its recall, and the verdict, mostly noise.
MIN_TEST_ROWS_PER_CLASS = 30
MIN_TEST_ROWS = 200


@dataclass(frozen=True)
class SplitPart:
    """Features and labels of one split, indexed by (symbol, timestamp).

    ``values`` is the row-major float32 matrix (rows x ``feature_names``) that ``features``
    shows as a DataFrame without copying; a caller that owns the split may scale it in place.
    """

    values: np.ndarray
    index: pd.MultiIndex
    feature_names: tuple[str, ...]
    labels: pd.Series

    @property
    def features(self) -> pd.DataFrame:
        return pd.DataFrame(
            self.values, index=self.index, columns=list(self.feature_names), copy=False
        )

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
    # Plain-words warnings about the splits (degenerate class shares, a tiny test split).
    warnings: tuple[str, ...] = ()

    def part(self, name: str) -> SplitPart:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def without_features(self) -> DataSplits:
        """The same splits with each part's feature values dropped (index and labels kept).

        What a run holds once the trainer has its scaled arrays: the row owners, labels,
        boundaries and counts that evaluation and the results need, not a second copy of every
        feature.
        """

        def light(part: SplitPart) -> SplitPart:
            return SplitPart(np.empty((len(part), 0), FEATURE_DTYPE), part.index, (), part.labels)

        return replace(
            self,
            train=light(self.train),
            validation=light(self.validation),
            test=light(self.test),
        )


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
    release_inputs: bool = False,
    test_split_warnings: bool = True,
) -> DataSplits:
    """Join each symbol's features and labels on timestamp, cut all at shared times, concatenate.

    With ``release_inputs`` (``per_symbol`` must then be a dict), each symbol's entry is removed
    from ``per_symbol`` as soon as its rows are copied, so a caller that holds no other reference
    to the frames frees them while the split matrices fill instead of holding both. Without
    ``test_split_warnings`` (a run judged on other bars), ``warnings`` leaves out those about the
    test split.
    Raises DataError when a split comes out empty for every symbol (saying why), when symbols have
    different feature columns, or when the training split holds fewer than two classes.
    """
    if not per_symbol:
        raise DataError("split_data: no symbols given")
    if release_inputs and not isinstance(per_symbol, dict):
        raise TypeError("split_data: release_inputs needs per_symbol as a dict")
    fractions = split_fractions(strategy_config, validation_split)
    purge = int(strategy_config["training"]["labels"]["label_lookahead"])
    names: list[str] | None = None
    joined: dict[str, tuple[np.ndarray, pd.Series]] = {}
    for symbol, (features, labels) in per_symbol.items():
        if names is None:
            names = list(features.columns)
        elif list(features.columns) != names:
            raise DataError(
                f"split_data: {symbol}'s feature columns differ from the first symbol's"
            )
        joined[symbol] = _join_on_timestamp(features, labels, symbol)
    del features, labels  # the loop's last frame, which release_inputs must not keep alive
    assert names is not None
    symbols = tuple(per_symbol)
    labelled = {s: y for s, (_, y) in joined.items()}
    train_cut, validation_cut, union_rows = _calendar_cuts(labelled, fractions)
    stamps = {s: pd.DatetimeIndex(y.index).as_unit("ns").asi8 for s, y in labelled.items()}
    # The end of the last label window before each cut, over all symbols.
    train_purge = _window_end(stamps, train_cut, purge)
    validation_purge = _window_end(stamps, validation_cut, purge)
    chosen: dict[str, list[tuple[str, np.ndarray, pd.Series]]] = {name: [] for name in SPLITS}
    boundaries: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SPLITS}
    for symbol, (rows, y) in joined.items():
        t = stamps[symbol]
        masks = {
            "train": t < train_cut,
            "validation": (t > train_purge) & (t < validation_cut),
            "test": t > validation_purge,
        }
        for name, mask in masks.items():
            py = y[mask]
            chosen[name].append((symbol, rows[mask], py))
            boundaries[name][symbol] = {
                "start": py.index[0].isoformat() if len(py) else None,
                "end": py.index[-1].isoformat() if len(py) else None,
                "rows": len(py),
            }
    for name in SPLITS:
        if not any(len(py) for _, _, py in chosen[name]):
            raise DataError(
                f"{', '.join(symbols)}: the {name} split is empty: {union_rows} labelled "
                f"timestamps split {fractions['train']:g}/{fractions['validation']:g}/"
                f"{fractions['test']:g} with a purge gap of {purge} rows leave none; load a longer "
                "range or reduce label_lookahead"
            )
    built = _gather(per_symbol, chosen, names, release_inputs)
    counts = {name: _class_counts(built[name], symbols) for name in SPLITS}
    present = [c for c, n in counts["train"]["all"].items() if n > 0]
    if len(present) < 2:
        raise DataError(
            f"the training split holds only {', '.join(present) or 'no'} labels; adjust "
            "training.labels (zigzag_threshold, label_lookahead) or load a longer range"
        )
    warnings = split_warnings(counts, include_test=test_split_warnings)
    for warning in warnings:
        logger.warning("%s", warning)
    logger.info(
        "split rows: train %d, validation %d, test %d (cuts at %s and %s, purge %d bars)",
        len(built["train"]),
        len(built["validation"]),
        len(built["test"]),
        pd.Timestamp(train_cut, tz="UTC"),
        pd.Timestamp(validation_cut, tz="UTC"),
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
        warnings=tuple(warnings),
    )


def split_warnings(
    class_counts: Mapping[str, Mapping[str, Mapping[str, int]]], *, include_test: bool = True
) -> list[str]:
    """Plain warnings on splits whose class shares make training or the verdict untrustworthy;
    those about the test split only with ``include_test``."""
    warnings = []
    for name in SPLITS if include_test else ("train", "validation"):
        counts = class_counts[name]["all"]
        total = sum(counts.values())
        shown = "/".join(f"{c} {n}" for c, n in counts.items())
        if total and max(counts.values()) > DOMINANT_SHARE * total:
            top = max(counts, key=lambda c: counts[c])
            warnings.append(
                f"the {name} split is {counts[top] / total:.1%} {top} ({shown}): a model can score "
                f"that by always answering {top}; adjust training.labels or the date range"
            )
    if not include_test:
        return warnings
    test = class_counts["test"]["all"]
    scarce = [c for c, n in test.items() if n < MIN_TEST_ROWS_PER_CLASS]
    if scarce:
        warnings.append(
            f"the test split has fewer than {MIN_TEST_ROWS_PER_CLASS} rows of "
            f"{', '.join(scarce)} ({'/'.join(f'{c} {n}' for c, n in test.items())}): "
            "per-class results for them are noise"
        )
    if sum(test.values()) < MIN_TEST_ROWS:
        warnings.append(
            f"the test split holds only {sum(test.values())} rows (under {MIN_TEST_ROWS}): "
            "its accuracy is too uncertain to judge the model; load a longer range"
        )
    return warnings


def _calendar_cuts(
    labelled: Mapping[str, pd.Series], fractions: Mapping[str, float]
) -> tuple[int, int, int]:
    """(train cut, validation cut) as ns timestamps over the union of labelled times, and its size.

    Rows before the train cut train; rows from the validation cut on test.
    """
    # Each symbol's stamps are sorted: a stable sort of their concatenation and one pass for
    # duplicates is far cheaper than np.unique's hashing on long series.
    stamps = np.sort(
        np.concatenate([pd.DatetimeIndex(y.index).as_unit("ns").asi8 for y in labelled.values()]),
        kind="stable",
    )
    union = stamps[np.r_[True, np.diff(stamps) != 0]] if len(stamps) else stamps
    rows = len(union)
    train_end = int(np.floor(rows * fractions["train"]))
    validation_end = train_end + int(np.floor(rows * fractions["validation"]))
    if not 0 < train_end < validation_end < rows:
        raise DataError(
            f"{', '.join(labelled)}: {rows} labelled timestamps are too few to split "
            f"{fractions['train']:g}/{fractions['validation']:g}/{fractions['test']:g}; load a "
            "longer range"
        )
    return int(union[train_end]), int(union[validation_end]), rows


def _window_end(stamps: Mapping[str, np.ndarray], cut: int, lookahead: int) -> int:
    """The latest open time of bar t+L over every symbol's last labelled row t before ``cut``.

    Labelled rows are a subset of the bars, so the row L positions later opens no earlier than
    bar t+L: purging up to it is safe. When a symbol's rows end within L rows, its window runs
    past its last row by the missing count of bars, each at least its smallest row spacing apart.
    """
    end = cut - 1
    for t in stamps.values():
        last = int(np.searchsorted(t, cut, side="left")) - 1
        if last < 0:
            continue
        beyond = last + lookahead - (len(t) - 1)
        if beyond <= 0:
            end = max(end, int(t[last + lookahead]))
        else:
            step = int(np.diff(t).min()) if len(t) > 1 else 0
            end = max(end, int(t[-1]) + beyond * step)
    return end


def _join_on_timestamp(
    features: pd.DataFrame, labels: pd.Series, symbol: str
) -> tuple[np.ndarray, pd.Series]:
    """Positions of the feature rows whose timestamp has a label (never matched by position in
    the two inputs), and those labels indexed by their timestamps. Nothing is copied."""
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
    rows = np.flatnonzero(matched)
    y = pd.Series(labels.to_numpy()[position[matched]], index=features.index[rows], name="label")
    return rows, y.astype("int8")


def _gather(
    per_symbol: Mapping[str, tuple[pd.DataFrame, pd.Series]],
    chosen: Mapping[str, list[tuple[str, np.ndarray, pd.Series]]],
    names: list[str],
    release_inputs: bool,
) -> dict[str, SplitPart]:
    """Every split: the chosen feature rows of every symbol, copied once into one row-major
    matrix per split (no per-symbol copies, no concatenation), indexed by (symbol, timestamp).

    Symbol by symbol, so that with ``release_inputs`` each symbol's frame is dropped from
    ``per_symbol`` once its rows are in all three matrices. Row-major, so that filling one
    symbol's rows touches only that symbol's share of the memory (numpy maps large arrays on
    huge pages: a column-major fill touches every page of the matrix from the first symbol on)."""
    values = {
        name: np.empty(
            (sum(len(rows) for _, rows, _ in chosen[name]), len(names)),
            dtype=FEATURE_DTYPE,
        )
        for name in SPLITS
    }
    offsets = dict.fromkeys(SPLITS, 0)
    for position, symbol in enumerate(list(per_symbol)):
        source = per_symbol[symbol][0].to_numpy(dtype=FEATURE_DTYPE)
        for name in SPLITS:
            rows = chosen[name][position][1]
            np.take(
                source, rows, axis=0, out=values[name][offsets[name] : offsets[name] + len(rows)]
            )
            offsets[name] += len(rows)
        del source
        if isinstance(per_symbol, dict) and release_inputs:
            del per_symbol[symbol]
            return_freed_memory()
    return {name: _part(values[name], chosen[name], names) for name in SPLITS}


def _part(
    values: np.ndarray, chosen: list[tuple[str, np.ndarray, pd.Series]], names: list[str]
) -> SplitPart:
    # The symbol level as codes into the run's symbols: a string per row would cost ~50 bytes.
    symbols = pd.Categorical.from_codes(
        np.repeat(np.arange(len(chosen)), [len(r) for _, r, _ in chosen]),
        dtype=pd.CategoricalDtype([symbol for symbol, _, _ in chosen]),
    )
    index = pd.MultiIndex.from_arrays(
        [
            symbols,
            pd.DatetimeIndex(
                np.concatenate(
                    [pd.DatetimeIndex(y.index).as_unit("ns").asi8 for _, _, y in chosen]
                ),
                tz="UTC",
            ),
        ],
        names=["symbol", "timestamp"],
    )
    labels = np.concatenate([y.to_numpy() for _, _, y in chosen]).astype("int8")
    return SplitPart(values, index, tuple(names), pd.Series(labels, index=index, name="label"))


def _class_counts(part: SplitPart, symbols: tuple[str, ...]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    values = part.labels.to_numpy()
    owners = part.labels.index.get_level_values("symbol")
    for symbol in (*symbols, "all"):
        mine = values if symbol == "all" else values[owners == symbol]
        tally = np.bincount(mine.astype(np.int64), minlength=3)
        counts[symbol] = {name: int(tally[i]) for i, name in enumerate(CLASS_NAMES)}
    return counts
