"""What must be identical when the same run trains on both execution paths, and where two
results first differ.

Both paths promise the same model for the same run: the same weights (``weights_digest``), the
same metrics, the same features and feature importance. Timings, ids, paths and the path's own
name differ by design and are not compared. One definition for every comparison of the two
paths: the shadow runs of a rollout, ``make compare-paths`` and the end-to-end tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Sections of a training result compared whole (flattened to dotted keys).
COMPARED_SECTIONS = (
    "training_metrics",
    "test_metrics",
    "feature_names",
    "feature_importance",
    "feature_importance_spread",
)
# Fields of the result's metadata compared too: the weights, and the test metrics by symbol.
COMPARED_METADATA = ("weights_digest", "per_symbol_test_metrics")


def comparable(result: Mapping[str, Any]) -> dict[str, Any]:
    """The compared fields of ``result``, flattened to dotted keys (``test_metrics.accuracy``),
    the weights digest first. A field the result lacks is absent."""
    metadata = result.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    fields: dict[str, Any] = {}
    for key in COMPARED_METADATA:
        if key in metadata:
            fields.update(_flatten(metadata[key], f"metadata.{key}"))
    for key in COMPARED_SECTIONS:
        if key in result:
            fields.update(_flatten(result[key], key))
    return fields


def first_difference(one: Mapping[str, Any], other: Mapping[str, Any]) -> str | None:
    """None when the two results agree on every compared field, else the first field that
    differs (the weights digest first, then in key order) with both values, e.g.
    ``test_metrics.accuracy: 0.52 != 0.51``; a field only one result has differs too."""
    mine, theirs = comparable(one), comparable(other)
    order = sorted(set(mine) | set(theirs), key=lambda key: (not key.startswith("metadata."), key))
    for key in order:
        a, b = mine.get(key, _MISSING), theirs.get(key, _MISSING)
        if _canonical(a) != _canonical(b):
            return f"{key}: {_shown(a)} != {_shown(b)}"
    return None


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING = _Missing()


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}"))
        return flat
    return {prefix: value}


def _canonical(value: Any) -> str:
    # JSON text: 1 and 1.0 differ as a saved result's would, and NaN equals NaN.
    if value is _MISSING:
        return "\0missing"
    return json.dumps(value, sort_keys=True, default=str)


def _shown(value: Any) -> str:
    text = repr(value) if value is _MISSING else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
