"""The manifest of a trained model: what it needs to recompute its features.

See docs/architecture.md: the artifact and the store.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ktrdr.config.features import (
    feature_history_bars,
    indicator_history_bars,
    indicator_warmup_bars,
)
from ktrdr.data.timeframes import sort_timeframes
from ktrdr.data.validation import SYMBOL_PATTERN, TIMEFRAME_PATTERN
from ktrdr.errors import DataError, ModelStorageError
from ktrdr.messages import shorten
from ktrdr.neural.classes import CLASS_NAMES
from ktrdr.neural.limits import MAX_HIDDEN_LAYERS, MAX_LAYER_WIDTH, MAX_PARAMETERS
from ktrdr.neural.mlp import mlp_weights
from ktrdr.store.layout import PICTURE_FILES, SCALER_FILE
from ktrdr.store.model_artifact import FORMAT_VERSION

_LIBRARIES = ("ktrdr", "torch", "numpy", "pandas", "ta-lib", "scikit-fuzzy", "pydantic")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def data_fingerprint(bars: Mapping[str, Mapping[str, pd.DataFrame]]) -> str:
    """sha256 over every symbol's and timeframe's bar times and OHLCV values, in sorted order."""
    digest = hashlib.sha256()
    for symbol in sorted(bars):
        for timeframe in sort_timeframes(bars[symbol]):
            frame = bars[symbol][timeframe]
            digest.update(f"{symbol}|{timeframe}|".encode())
            digest.update(pd.DatetimeIndex(frame.index).as_unit("ns").asi8.tobytes())
            digest.update(
                np.ascontiguousarray(
                    frame[["open", "high", "low", "close", "volume"]].to_numpy("float64")
                ).tobytes()
            )
    return digest.hexdigest()


def build_manifest(
    *,
    strategy_config: Mapping[str, Any],
    architecture: Mapping[str, Any],
    feature_names: Sequence[str],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    boundaries: Mapping[str, Any],
    class_counts: Mapping[str, Any],
    fingerprint: str,
    scaled: bool,
) -> dict[str, Any]:
    """Everything prediction needs beside the weights, plus provenance (no metrics, no hashes:
    the store adds the file hashes when it writes the version)."""
    ordered = sort_timeframes(timeframes)
    features = strategy_config["model"]["features"]
    extra = feature_history_bars(strategy_config)
    warmup = indicator_warmup_bars(strategy_config) + extra
    stable = indicator_history_bars(strategy_config) + extra
    return {
        "format_version": FORMAT_VERSION,
        "strategy": strategy_config["name"],
        "created_at": datetime.now(UTC).isoformat(),
        "architecture": dict(architecture),
        "feature_names": list(feature_names),
        "class_map": {str(i): name for i, name in enumerate(CLASS_NAMES)},
        "indicators": list(strategy_config["indicators"]),
        "fuzzy_sets": dict(strategy_config["fuzzy_sets"]),
        "features": dict(features),
        "labels": dict(strategy_config["training"]["labels"]),
        "symbols": list(symbols),
        "timeframes": ordered,
        "base_timeframe": ordered[0],
        "lookback_periods": int(features["lookback_periods"]),
        "warmup_bars": {tf: warmup for tf in ordered},
        "stable_history_bars": {tf: stable for tf in ordered},
        "scaled": scaled,
        "splits": dict(boundaries),
        "class_counts": dict(class_counts),
        "seed": int(strategy_config["training"]["seed"]),
        "library_versions": library_versions(),
        "data_fingerprint": fingerprint,
    }


# --- reading a manifest back: trusted only after these checks ---------------------------------

_SHA256 = r"^[0-9a-f]{64}$"
_ALWAYS_FILES = frozenset({"model.pt", "metrics.json", "config.yaml"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ArchitectureSpec(_Strict):
    type: Literal["mlp"]
    input_dim: int = Field(ge=1, le=1_000_000)
    hidden_layers: list[Annotated[int, Field(ge=1, le=MAX_LAYER_WIDTH)]] = Field(
        min_length=1, max_length=MAX_HIDDEN_LAYERS
    )
    activation: Literal["relu", "tanh", "gelu", "leaky_relu"]
    dropout: float = Field(ge=0.0, lt=1.0)
    output_dim: Literal[3]

    def parameter_count(self) -> int:
        return mlp_weights(self.input_dim, self.hidden_layers, self.output_dim)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """State-dict keys and shapes of the ``nn.Sequential`` that ``build_mlp`` makes."""
        shapes: dict[str, tuple[int, ...]] = {}
        position = 0
        widths = [self.input_dim, *self.hidden_layers, self.output_dim]
        for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            shapes[f"{position}.weight"] = (fan_out, fan_in)
            shapes[f"{position}.bias"] = (fan_out,)
            last = layer == len(widths) - 2
            position += 1 if last else (3 if self.dropout > 0 else 2)
        return shapes


class ArtifactManifest(_Strict):
    """The manifest ``build_manifest`` makes for an artifact, before a store adds its id and
    file hashes: every name in it is checked, since it becomes part of a path."""

    format_version: int = Field(ge=1)
    strategy: str = Field(pattern=r"^[A-Za-z0-9_-]{1,100}$")
    created_at: str = Field(max_length=64)
    architecture: ArchitectureSpec
    feature_names: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1)
    class_map: dict[str, str]
    indicators: list[dict[str, Any]]
    fuzzy_sets: dict[str, dict[str, Any]]
    features: dict[str, Any]
    labels: dict[str, Any]
    symbols: list[Annotated[str, Field(pattern=SYMBOL_PATTERN)]] = Field(min_length=1)
    timeframes: list[Annotated[str, Field(pattern=TIMEFRAME_PATTERN)]] = Field(min_length=1)
    base_timeframe: str
    lookback_periods: int = Field(ge=0)
    warmup_bars: dict[str, Annotated[int, Field(ge=0)]]
    stable_history_bars: dict[str, Annotated[int, Field(ge=0)]]
    scaled: bool
    splits: dict[str, Any]
    class_counts: dict[str, Any]
    seed: int = Field(ge=0)
    library_versions: dict[str, str]
    data_fingerprint: str = Field(pattern=_SHA256)
    overrides: dict[str, Any] | None = None
    # A sweep member: {"name": sweep folder, "run_id": "r003"}.
    sweep: dict[str, str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ArtifactManifest:
        if len(self.feature_names) != self.architecture.input_dim:
            raise ValueError(
                f"{len(self.feature_names)} feature names but architecture.input_dim is "
                f"{self.architecture.input_dim}"
            )
        if any(set(symbol) <= {"."} for symbol in self.symbols):
            raise ValueError(f"symbols {self.symbols} hold a name of dots only")
        try:
            ordered = sort_timeframes(self.timeframes)
        except DataError as exc:
            raise ValueError(str(exc)) from None
        if self.timeframes != ordered:
            raise ValueError(f"timeframes {self.timeframes} are not sorted shortest first")
        if self.base_timeframe != self.timeframes[0]:
            raise ValueError(f"base_timeframe {self.base_timeframe!r} is not {self.timeframes[0]}")
        for name in ("warmup_bars", "stable_history_bars"):
            if set(getattr(self, name)) != set(self.timeframes):
                raise ValueError(f"{name} must name exactly the timeframes {self.timeframes}")
        if self.architecture.parameter_count() > MAX_PARAMETERS:
            raise ValueError(
                f"architecture has {self.architecture.parameter_count():,} weights, over the "
                f"{MAX_PARAMETERS:,} ktrdr trains"
            )
        return self


class Manifest(ArtifactManifest):
    """The manifest.json of a saved version, as ``build_manifest`` and the store write it."""

    model_id: str = Field(max_length=400)
    files: dict[str, Annotated[str, Field(pattern=_SHA256)]]

    @model_validator(mode="after")
    def _lists_its_files(self) -> Manifest:
        expected = set(_ALWAYS_FILES) | ({SCALER_FILE} if self.scaled else set())
        if not expected <= set(self.files) <= expected | set(PICTURE_FILES):
            missing = sorted(expected - set(self.files))
            extra = sorted(set(self.files) - expected - set(PICTURE_FILES))
            raise ValueError(
                f"files must list exactly {', '.join(sorted(expected))} (scaled={self.scaled})"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unexpected {', '.join(extra)}" if extra else "")
                + "; the pictures are optional"
            )
        return self


def check_manifest(document: object, source: str) -> Manifest:
    """The validated manifest of a saved version, or ModelStorageError naming ``source`` and
    the first problems."""
    checked = _validated(
        Manifest, document, source, "the version was edited or damaged, retrain or restore it"
    )
    assert isinstance(checked, Manifest)
    return checked


def check_artifact_manifest(document: object, source: str) -> ArtifactManifest:
    """The validated manifest of an artifact not yet saved (no id, no file hashes), or
    ModelStorageError naming ``source`` and the first problems."""
    return _validated(
        ArtifactManifest, document, source, "the model was not made by a ktrdr training"
    )


def _validated(
    model: type[ArtifactManifest], document: object, source: str, advice: str
) -> ArtifactManifest:
    if not isinstance(document, dict):
        raise ModelStorageError(f"{source}: not a JSON object")
    version = document.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ModelStorageError(
            f"{source}: format_version {version} is newer than this ktrdr reads "
            f"({FORMAT_VERSION}); upgrade ktrdr to load it"
        )
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'manifest'}: "
            f"{shorten(error['msg'].removeprefix('Value error, '))}"
            for error in exc.errors()[:3]
        )
        raise ModelStorageError(f"{source}: invalid manifest ({problems}); {advice}") from None
