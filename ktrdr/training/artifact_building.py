"""Assemble the ModelArtifact of a finished run (what step 10 saves)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ktrdr.store.manifest import build_manifest
from ktrdr.store.model_artifact import ModelArtifact
from ktrdr.store.scaler import ScalerParams
from ktrdr.training.data_split import DataSplits


def build_artifact(
    *,
    model: nn.Module,
    strategy_config: Mapping[str, Any],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    splits: DataSplits,
    scaler: ScalerParams | None,
    fingerprint: str,
    metrics: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
) -> ModelArtifact:
    """CPU copy of the weights plus the manifest, scaler, metrics and resolved strategy.

    ``fingerprint`` is ``data_fingerprint`` of the bars the run loaded, taken when they were
    loaded so the run need not keep them until the end. ``overrides`` (``--set``,
    ``--epochs``, a Python ``overrides=``) go into the manifest, where listings show them.
    """
    architecture = dict(model.architecture_spec)  # type: ignore[arg-type]
    manifest = build_manifest(
        strategy_config=strategy_config,
        architecture=architecture,
        feature_names=list(splits.feature_names),
        symbols=symbols,
        timeframes=timeframes,
        boundaries=splits.boundaries,
        class_counts=splits.class_counts,
        fingerprint=fingerprint,
        scaled=scaler is not None,
    )
    if overrides:
        manifest["overrides"] = dict(overrides)
    return ModelArtifact(
        state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        architecture=architecture,
        manifest=manifest,
        scaler=scaler,
        metrics=dict(metrics),
        config=dict(strategy_config),
    )
