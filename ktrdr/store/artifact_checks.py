"""What a model must pass before it is saved or used, wherever it comes from.

``check_artifact`` runs on every artifact the store saves and every artifact received from
another process (``ktrdr.store.archive`` guards the torch file before it is even unpacked):
its manifest against the schema (every name in it becomes part of a path), its strategy,
symbols and timeframes against the request that made it, its weights loaded strictly into the
architecture they claim (under the parameter cap), and every weight finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ktrdr.errors import ModelStorageError
from ktrdr.messages import shorten
from ktrdr.neural.mlp import build_mlp
from ktrdr.store.archive import non_finite_weights
from ktrdr.store.manifest import check_artifact_manifest
from ktrdr.store.model_artifact import ModelArtifact


@dataclass(frozen=True)
class Expected:
    """What the request that produced a model asked for: the model must be exactly that."""

    strategy: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]

    @classmethod
    def of(cls, strategy: str, symbols: Sequence[str], timeframes: Sequence[str]) -> Expected:
        return cls(str(strategy), tuple(symbols), tuple(timeframes))


def check_artifact(artifact: ModelArtifact, name: str, expected: Expected | None = None) -> None:
    """ModelStorageError naming ``name`` and the first problem, unless ``artifact`` is whole.

    Checks, in order: the manifest (``check_artifact_manifest``: names, sizes, feature count,
    parameter cap); that the manifest, the resolved strategy and ``expected`` agree on the
    strategy, symbols and timeframes; a strict load into ``build_mlp(architecture)``; finite
    weights.
    """
    manifest = check_artifact_manifest(artifact.manifest, f"{name}: manifest")
    if artifact.architecture != manifest.architecture.model_dump():
        raise ModelStorageError(f"{name}: the architecture differs from the manifest's")
    config_name = artifact.config.get("name") if isinstance(artifact.config, dict) else None
    if config_name != manifest.strategy:
        raise ModelStorageError(
            f"{name}: the manifest says strategy {manifest.strategy!r}, the resolved strategy "
            f"{config_name!r}"
        )
    if expected is not None:
        made = Expected.of(manifest.strategy, manifest.symbols, manifest.timeframes)
        if made != expected:
            raise ModelStorageError(
                f"{name}: a model of {made.strategy} on {','.join(made.symbols)} "
                f"{','.join(made.timeframes)}, not of the {expected.strategy} on "
                f"{','.join(expected.symbols)} {','.join(expected.timeframes)} that was asked for"
            )
    try:
        build_mlp(artifact.architecture).load_state_dict(artifact.state_dict, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise ModelStorageError(
            f"{name}: the weights do not fit the architecture ({shorten(exc)})"
        ) from exc
    broken = non_finite_weights(artifact.state_dict)
    if broken:
        raise ModelStorageError(
            f"{name}: weights {shorten(', '.join(broken))} hold NaN or infinite values"
        )
