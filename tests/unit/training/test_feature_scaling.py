from __future__ import annotations

import numpy as np
import pytest

from ktrdr.errors import DataError
from ktrdr.training import feature_scaling
from ktrdr.training.data_split import split_data
from ktrdr.training.feature_scaling import fit_scaler, scale_in_place, scaled_arrays
from tests.unit.training.test_data_split import config, symbol_data

pytestmark = pytest.mark.unit


def float32_splits(rows: int = 600):  # type: ignore[no-untyped-def]
    features, labels = symbol_data(rows)
    features = features.astype(np.float32) * np.float32(1000) + np.float32(5000)
    return split_data({"AAA": (features, labels)}, config(5))


@pytest.mark.parametrize("block_rows", [7, 16_384])
def test_scaling_in_place_gives_the_trainers_arrays_to_the_bit(
    block_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feature_scaling, "SCALE_BLOCK_ROWS", block_rows)
    splits = float32_splits()
    params = fit_scaler(splits.train.features)
    for part in (splits.train, splits.validation, splits.test):
        expected, _ = scaled_arrays(part.features, part.labels, params)
        values = part.values
        assert scale_in_place(values, part.feature_names, params) is values
        assert values.dtype == np.float32
        assert np.array_equal(values, expected)
        assert np.array_equal(part.features.to_numpy(), expected), "the split shows its matrix"


def test_scaling_in_place_refuses_other_names_and_layouts() -> None:
    splits = float32_splits()
    params = fit_scaler(splits.train.features)
    values, names = splits.test.values, splits.test.feature_names
    with pytest.raises(DataError, match="different order"):
        scale_in_place(values, tuple(reversed(names)), params)
    with pytest.raises(DataError, match="missing: c"):
        scale_in_place(values[:, :2].copy(), names[:2], params)
    for bad in (
        np.asfortranarray(values),
        values.astype(np.float64),
        np.frombuffer(values.tobytes(), dtype=np.float32).reshape(values.shape),  # read-only
    ):
        with pytest.raises(DataError, match="writable, row-major float32 matrix"):
            scale_in_place(bad, names, params)
