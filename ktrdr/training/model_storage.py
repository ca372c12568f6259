"""Step 10: the versioned model store (DESIGN.md §11).

    {models_dir}/{strategy}/{SYMBOLS}_{TIMEFRAMES}_v{N}/   model.pt, manifest.json, scaler.json,
                                                           metrics.json, config.yaml
    {models_dir}/{strategy}/latest -> the newest complete version (a relative symlink)

A version is written into a ``.tmp-*`` folder and renamed into place, all under a per-strategy file
lock, so a crash leaves no visible half-written version and concurrent saves get distinct numbers.
Loading verifies every file's sha256 from the manifest and never unpickles code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from ktrdr import settings
from ktrdr.errors import ModelStorageError
from ktrdr.fileio import exclusive_lock, fsync_dir
from ktrdr.training.feature_scaling import ScalerParams
from ktrdr.training.model_artifact import FORMAT_VERSION, ModelArtifact

logger = logging.getLogger(__name__)

_STRATEGY = re.compile(r"[A-Za-z0-9_-]{1,100}")
_VERSION_DIR = re.compile(r"(?P<symbols>[A-Za-z0-9._-]+)_(?P<timeframes>[0-9a-z-]+)_v(?P<n>\d+)")
_TMP_PREFIX = ".tmp-"
_HASHED_FILES = ("model.pt", "scaler.json", "metrics.json", "config.yaml")


@dataclass(frozen=True)
class SavedModel:
    """Where a saved version lives."""

    path: Path
    model_id: str
    version: int


@dataclass(frozen=True)
class ModelInfo:
    """One stored version, as listings show it."""

    strategy: str
    name: str
    version: int
    path: Path
    model_id: str
    symbols: list[str]
    timeframes: list[str]
    created_at: str
    test_accuracy: float | None
    baseline_accuracy: float | None
    is_latest: bool


class ModelStorage:
    """Save, list, load and delete model versions under one models folder."""

    def __init__(self, models_dir: str | os.PathLike[str] | None = None) -> None:
        self.root = settings.models_dir(models_dir).absolute()

    # --- saving ---------------------------------------------------------------------------

    def save_model(self, artifact: ModelArtifact) -> SavedModel:
        """Write ``artifact`` as the strategy's next version and point ``latest`` at it."""
        strategy = _check_strategy(artifact.strategy_name)
        symbols = artifact.manifest["symbols"]
        timeframes = artifact.manifest["timeframes"]
        stem = f"{'-'.join(symbols)}_{'-'.join(timeframes)}"
        folder = self.root / strategy
        folder.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(folder / ".lock"):
            _remove_stale_temporaries(folder)
            version = 1 + max((v for _, v in _versions(folder)), default=0)
            name = f"{stem}_v{version}"
            temporary = folder / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
            temporary.mkdir()
            try:
                _write_version(temporary, artifact, f"{strategy}/{name}")
                fsync_dir(temporary)
                os.rename(temporary, folder / name)
                fsync_dir(folder)
                _point_latest(folder, name)
            except BaseException:
                shutil.rmtree(temporary, ignore_errors=True)
                raise
        path = folder / name
        logger.info("saved model %s/%s at %s", strategy, name, path)
        return SavedModel(path=path, model_id=f"{strategy}/{name}", version=version)

    # --- reading --------------------------------------------------------------------------

    def list_models(self, strategy: str | None = None) -> list[ModelInfo]:
        """Every complete version (``.tmp-*`` folders are ignored), oldest first per strategy."""
        if not self.root.is_dir():
            return []
        strategies = (
            [_check_strategy(strategy)]
            if strategy
            else sorted(
                p.name for p in self.root.iterdir() if p.is_dir() and _STRATEGY.fullmatch(p.name)
            )
        )
        infos = []
        for name in strategies:
            folder = self.root / name
            if not folder.is_dir():
                continue
            latest = _latest_name(folder)
            for version_dir, version in sorted(_versions(folder), key=lambda item: item[1]):
                infos.append(_info(name, version_dir, version, version_dir.name == latest))
        return infos

    def resolve(self, path_or_id: str | os.PathLike[str]) -> Path:
        """The version folder for a path, a ``strategy/version`` id or ``strategy/latest``."""
        candidate = Path(path_or_id)
        if candidate.is_dir() and (candidate / "manifest.json").exists():
            return candidate.resolve()
        text = str(path_or_id).strip("/")
        parts = text.split("/")
        if (
            len(parts) == 2
            and _STRATEGY.fullmatch(parts[0])
            and (parts[1] == "latest" or _VERSION_DIR.fullmatch(parts[1]))
        ):
            folder = self.root / parts[0] / parts[1]
            if folder.is_dir():
                return folder.resolve()
        raise ModelStorageError(
            f"no model at {path_or_id!r}; give a version folder or an id such as "
            f"neuro_mean_reversion/latest (see 'ktrdr models list', store {self.root})"
        )

    def load(self, path_or_id: str | os.PathLike[str]) -> ModelArtifact:
        """The verified artifact of one version; ModelStorageError if missing, tampered,
        truncated or written by a newer format."""
        return load_version(self.resolve(path_or_id))

    def delete_model(self, path_or_id: str | os.PathLike[str]) -> None:
        """Remove one version; ``latest`` moves to the newest remaining version (or goes)."""
        path = self.resolve(path_or_id)
        folder = path.parent
        if folder.parent.resolve() != self.root.resolve():
            raise ModelStorageError(f"{path} is not inside the model store {self.root}")
        with exclusive_lock(folder / ".lock"):
            was_latest = _latest_name(folder) == path.name
            shutil.rmtree(path)
            if was_latest:
                remaining = sorted(_versions(folder), key=lambda item: item[1])
                if remaining:
                    _point_latest(folder, remaining[-1][0].name)
                else:
                    (folder / "latest").unlink(missing_ok=True)
        logger.info("deleted model %s", path)


def load_version(path: Path) -> ModelArtifact:
    """Read and verify one version folder (see ``ModelStorage.load``)."""
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise ModelStorageError(f"{path}: no manifest.json; not a model version folder")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelStorageError(f"{manifest_path}: unreadable ({exc})") from exc
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelStorageError(
            f"{path}: format_version {version!r} is newer than this ktrdr reads "
            f"({FORMAT_VERSION}); upgrade ktrdr to load it"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or "model.pt" not in files:
        raise ModelStorageError(f"{manifest_path}: no file hashes; the version is incomplete")
    for name, expected in files.items():
        if name not in _HASHED_FILES:
            raise ModelStorageError(f"{manifest_path}: unexpected file entry {name!r}")
        file = path / name
        if not file.is_file():
            raise ModelStorageError(f"{path}: {name} is missing")
        if _sha256(file) != expected:
            raise ModelStorageError(
                f"{file}: sha256 does not match the manifest; the file was changed or truncated "
                "after saving. Retrain or restore it from a backup"
            )
    try:
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
        metrics = json.loads((path / "metrics.json").read_text())
        config = yaml.safe_load((path / "config.yaml").read_text())
        scaler = None
        if "scaler.json" in files:
            scaler = ScalerParams.from_dict(json.loads((path / "scaler.json").read_text()))
    except Exception as exc:
        raise ModelStorageError(f"{path}: cannot be loaded ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelStorageError(f"{path}/model.pt: not a state dict")
    manifest = {k: v for k, v in manifest.items() if k != "files"}
    if not isinstance(manifest.get("architecture"), dict):
        raise ModelStorageError(f"{manifest_path}: no architecture spec")
    return ModelArtifact(
        state_dict=state,
        architecture=manifest["architecture"],
        manifest=manifest,
        scaler=scaler,
        metrics=metrics,
        config=config,
    )


def _write_version(folder: Path, artifact: ModelArtifact, model_id: str) -> None:
    torch.save(
        {k: v.detach().cpu().contiguous() for k, v in artifact.state_dict.items()},
        folder / "model.pt",
    )
    if artifact.scaler is not None:
        _write_text(folder / "scaler.json", json.dumps(artifact.scaler.to_dict(), indent=2))
    _write_text(folder / "metrics.json", json.dumps(artifact.metrics, indent=2, sort_keys=True))
    _write_text(folder / "config.yaml", yaml.safe_dump(artifact.config, sort_keys=False))
    files = {name: _sha256(folder / name) for name in _HASHED_FILES if (folder / name).exists()}
    manifest = {
        **artifact.manifest,
        "architecture": artifact.architecture,
        "model_id": model_id,
        "files": files,
    }
    _write_text(folder / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    for name in (*files, "manifest.json"):
        with open(folder / name, "rb") as handle:
            os.fsync(handle.fileno())


def _write_text(path: Path, text: str) -> None:
    path.write_text(text + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _versions(folder: Path) -> list[tuple[Path, int]]:
    found = []
    for path in folder.iterdir():
        match = _VERSION_DIR.fullmatch(path.name)
        if match and path.is_dir() and not path.is_symlink():
            found.append((path, int(match.group("n"))))
    return found


def _remove_stale_temporaries(folder: Path) -> None:
    # Called under the lock: any temporary folder now is left over from a crashed save.
    for path in folder.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
        logger.info("removed a half-written version left by an interrupted save: %s", path)


def _point_latest(folder: Path, name: str) -> None:
    temporary = folder / f".latest-{uuid.uuid4().hex}"
    os.symlink(name, temporary)
    os.replace(temporary, folder / "latest")


def _latest_name(folder: Path) -> str | None:
    link = folder / "latest"
    return os.readlink(link) if link.is_symlink() else None


def _check_strategy(name: str) -> str:
    if not _STRATEGY.fullmatch(name or ""):
        raise ModelStorageError(f"invalid strategy name {name!r}; use letters, digits, _ and -")
    return name


def _info(strategy: str, path: Path, version: int, is_latest: bool) -> ModelInfo:
    manifest: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    with contextlib.suppress(OSError, json.JSONDecodeError):
        manifest = json.loads((path / "manifest.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
    test = metrics.get("test_metrics", {}) if isinstance(metrics, dict) else {}
    return ModelInfo(
        strategy=strategy,
        name=path.name,
        version=version,
        path=path,
        model_id=f"{strategy}/{path.name}",
        symbols=list(manifest.get("symbols", [])),
        timeframes=list(manifest.get("timeframes", [])),
        created_at=str(manifest.get("created_at", "")),
        test_accuracy=test.get("accuracy"),
        baseline_accuracy=test.get("baseline_accuracy"),
        is_latest=is_latest,
    )
