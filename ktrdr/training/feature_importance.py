"""Step 9: permutation importance on the validation split.

See docs/architecture.md: the twelve steps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from torch import nn

from ktrdr.async_infrastructure.cancellation import CancellationToken, check_cancelled
from ktrdr.errors import DataError
from ktrdr.training.evaluation import PREDICT_CHUNK, predict_logits

logger = logging.getLogger(__name__)


class PermutationImportance(NamedTuple):
    """Per feature: the mean drop in validation accuracy over the repeats (``mean``) and its
    sample standard deviation over them (``spread``; 0.0 with one repeat)."""

    mean: dict[str, float]
    spread: dict[str, float]


def calculate_feature_importance(
    model: nn.Module,
    X_val: np.ndarray,
    y_val: np.ndarray,
    feature_names: Sequence[str],
    seed: int,
    repeats: int,
    device: str,
    *,
    cancellation_token: CancellationToken | None = None,
) -> PermutationImportance:
    """Drop in validation accuracy when one feature's column is shuffled, per feature: its mean
    and its spread over the repeats.

    Each feature is shuffled ``repeats`` times with permutations from
    ``np.random.default_rng(seed)``, drawn in feature order, so the result is reproducible. The
    repeats of one feature go through the model stacked (as many per pass as one prediction
    chunk holds), and the token is checked before each feature. Positive values mean the model
    relies on the feature. Raises DataError on mismatched input, CancellationError when
    cancelled.
    """
    if X_val.ndim != 2 or X_val.shape[1] != len(feature_names):
        raise DataError(
            f"feature importance: {X_val.shape} features for {len(feature_names)} names"
        )
    if len(X_val) == 0 or len(X_val) != len(y_val):
        raise DataError("feature importance needs validation rows with labels")
    if repeats < 1:
        raise DataError("training.feature_importance.repeats must be at least 1")
    labels = np.asarray(y_val, dtype=np.int64)
    features = np.ascontiguousarray(X_val, dtype=np.float32)
    rows = len(features)
    base = float((predict_logits(model, features, device).argmax(axis=1) == labels).mean())
    rng = np.random.default_rng(seed)
    # Repeats go through the model stacked, as many per pass as fit in one prediction chunk:
    # few passes on small validation sets, no repeats-sized copy on large ones.
    group = max(1, min(repeats, PREDICT_CHUNK // rows))
    stacked = np.tile(features, (group, 1))  # one block of rows per repeat in the pass
    importance: dict[str, float] = {}
    spread: dict[str, float] = {}
    for column, name in enumerate(feature_names):
        check_cancelled(cancellation_token, "step 9 (feature importance)")
        accuracies: list[float] = []
        for first in range(0, repeats, group):
            count = min(group, repeats - first)
            for block in range(count):
                stacked[block * rows : (block + 1) * rows, column] = features[
                    rng.permutation(rows), column
                ]
            logits = predict_logits(model, stacked[: count * rows], device)
            predicted = logits.argmax(axis=1).reshape(count, rows)
            accuracies.extend((predicted == labels).mean(axis=1))
        stacked[:, column] = np.tile(features[:, column], group)
        drops = base - np.asarray(accuracies)
        importance[name] = float(np.mean(drops))
        spread[name] = float(np.std(drops, ddof=1)) if repeats > 1 else 0.0
    top = sorted(importance.items(), key=lambda item: -item[1])[:3]
    logger.info(
        "most important features: %s",
        ", ".join(f"{n} {v:+.4f} (sd {spread[n]:.4f})" for n, v in top),
    )
    return PermutationImportance(importance, spread)
