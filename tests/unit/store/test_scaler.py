"""The saved scaler: JSON both ways, and refused when its numbers cannot be a scaler."""

from __future__ import annotations

import json
import math

import pytest

from ktrdr.errors import DataError
from ktrdr.store.scaler import ScalerParams

pytestmark = pytest.mark.unit


def test_a_scaler_survives_json_exactly() -> None:
    scaler = ScalerParams(("a", "b"), (0.1, -2.5), (1.0, 1e-7))
    again = ScalerParams.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert again == scaler and scaler.to_dict()["kind"] == "standard"
    ranged = ScalerParams(("a", "b"), (0.1, -2.5), (1.0, 1e-7), (-1.0, -3.0), (2.0, -2.0))
    assert ScalerParams.from_dict(json.loads(json.dumps(ranged.to_dict()))) == ranged


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"feature_names": ["a"], "centers": [0.0]}, "malformed"),
        ({"feature_names": ["a"], "centers": ["x"], "scales": [1.0]}, "malformed"),
        ({"feature_names": ["a", "b"], "centers": [0.0], "scales": [1.0]}, "different lengths"),
        ({"feature_names": ["a"], "centers": [math.nan], "scales": [1.0]}, "non-finite"),
        ({"feature_names": ["a"], "centers": [0.0], "scales": [0.0]}, "non-positive"),
        (
            {"feature_names": ["a"], "centers": [0.0], "scales": [1.0], "lows": [0.0]},
            "malformed",
        ),
        (
            {"feature_names": ["a"], "centers": [0.0], "scales": [1.0], "lows": [1], "highs": [0]},
            "low is above high",
        ),
        (
            {
                "feature_names": ["a"],
                "centers": [0.0],
                "scales": [1.0],
                "lows": [math.inf],
                "highs": [math.inf],
            },
            "non-finite training range",
        ),
    ],
)
def test_a_scaler_that_cannot_be_is_refused(document: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        ScalerParams.from_dict(document)
