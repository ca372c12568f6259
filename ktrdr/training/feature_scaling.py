"""Step 6b: standardise features with statistics of the training rows only.

See docs/architecture.md: leakage rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ktrdr.data.validation import check_feature_frame
from ktrdr.errors import DataError
from ktrdr.store.scaler import ScalerParams

logger = logging.getLogger(__name__)


def fit_scaler(train_features: pd.DataFrame) -> ScalerParams:
    """Means and standard deviations of the training features, and their ranges (min, max).

    A column that is constant over training (common for fuzzy memberships that never fire)
    gets scale 1, so it passes through centred instead of dividing by zero. Raises DataError on
    empty or non-finite input.
    """
    if train_features.empty:
        raise DataError("fit_scaler: no training rows")
    # Column by column in float64: the statistics are exact to float64 without a float64 copy
    # of the whole training matrix.
    values = train_features.to_numpy()
    centers = np.empty(values.shape[1])
    scales = np.empty(values.shape[1])
    lows = np.empty(values.shape[1])
    highs = np.empty(values.shape[1])
    for column in range(values.shape[1]):
        data = values[:, column].astype(np.float64)
        if not np.isfinite(data).all():
            raise DataError(
                f"fit_scaler: training feature {train_features.columns[column]!r} holds NaN or "
                "infinite values"
            )
        centers[column] = data.mean()
        scales[column] = data.std()
        lows[column], highs[column] = data.min(), data.max()
    constant = ~(scales > 1e-12)
    scales[constant] = 1.0
    if constant.any():
        logger.debug("%d constant feature column(s) keep scale 1", int(constant.sum()))
    return ScalerParams(
        tuple(map(str, train_features.columns)),
        tuple(map(float, centers)),
        tuple(map(float, scales)),
        tuple(map(float, lows)),
        tuple(map(float, highs)),
    )


def apply_scaler(features: pd.DataFrame, params: ScalerParams) -> pd.DataFrame:
    """``(features - centre) / scale`` as a new frame; columns must match the fitted names."""
    check_feature_frame(features, params.feature_names, source="apply_scaler")
    scaled = (features.to_numpy(dtype="float64") - np.asarray(params.centers)) / np.asarray(
        params.scales
    )
    return pd.DataFrame(
        scaled, index=features.index.copy(), columns=features.columns.copy(), copy=False
    )


def scaled_arrays(
    features: pd.DataFrame, labels: pd.Series, params: ScalerParams | None
) -> tuple[np.ndarray, np.ndarray]:
    """One split as the trainer takes it: float32 features (scaled when ``params`` is given)
    and int64 labels."""
    if params is None:
        return features.to_numpy(dtype=np.float32), labels.to_numpy(dtype=np.int64)
    check_feature_frame(features, params.feature_names, source="scaled_arrays")
    # Column by column into the float32 result: the same float64 arithmetic as apply_scaler,
    # without a float64 copy of the whole split beside it.
    values = features.to_numpy()
    scaled = np.empty(values.shape, dtype=np.float32)
    for column, (center, scale) in enumerate(zip(params.centers, params.scales, strict=True)):
        scaled[:, column] = (values[:, column].astype(np.float64) - center) / scale
    return scaled, labels.to_numpy(dtype=np.int64)


# Rows scaled per float64 block in scale_in_place (4 MiB of float64 at 32 features).
SCALE_BLOCK_ROWS = 16_384


def scale_in_place(
    values: np.ndarray, feature_names: Sequence[str], params: ScalerParams
) -> np.ndarray:
    """Scale a row-major float32 feature matrix in place, to exactly what ``scaled_arrays``
    returns, and return it.

    For the owner of a split's matrix (the executor): the scaled features never need a second
    matrix beside the unscaled one. Each block of rows is computed in float64 and stored back
    rounded once. Raises DataError when ``feature_names`` differ from the fitted names, or
    when ``values`` is not a writable, row-major float32 matrix of that width.
    """
    check_feature_frame(
        pd.DataFrame(columns=list(feature_names)), params.feature_names, source="scale_in_place"
    )
    if (
        values.dtype != np.float32
        or values.ndim != 2
        or values.shape[1] != len(params.feature_names)
        or not values.flags.c_contiguous
        or not values.flags.writeable
    ):
        raise DataError(
            "scale_in_place: needs a writable, row-major float32 matrix with "
            f"{len(params.feature_names)} columns, got {values.dtype} {values.shape}"
        )
    centers = np.asarray(params.centers, dtype=np.float64)
    scales = np.asarray(params.scales, dtype=np.float64)
    for start in range(0, len(values), SCALE_BLOCK_ROWS):
        block = values[start : start + SCALE_BLOCK_ROWS]
        block[...] = (block.astype(np.float64) - centers) / scales
    return values
