"""Step 10: the versioned model store (docs/architecture.md: the artifact and the store).

    {models_dir}/{strategy}/{SYMBOLS}_{TIMEFRAMES}_v{N}/   model.pt, manifest.json, scaler.json,
                                                           metrics.json, config.yaml
    {models_dir}/{strategy}/{SYMBOLS}_{TIMEFRAMES}_latest -> that symbol set's newest version
    {models_dir}/{strategy}/latest -> the strategy's newest version, of any symbol set

Links are relative symlinks. Versions are numbered per symbol set (EURUSD_1h_v1, USDCAD_1h_v1):
``latest`` alone is the newest of any set, which is the wrong model for another set's symbols,
so ``resolve(..., symbol=S)`` takes ``latest`` to mean the newest version trained on S.

A version is written into a ``.tmp-*`` folder and renamed into place, all under a per-strategy file
lock, so a crash leaves no visible half-written version and concurrent saves get distinct numbers.
Loading verifies every file's sha256 from the manifest and never unpickles code.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ktrdr import settings
from ktrdr.errors import DataError, ModelStorageError
from ktrdr.fileio import atomic_write, atomic_write_bytes, exclusive_lock, fsync_dir
from ktrdr.messages import shorten

if TYPE_CHECKING:
    import torch

    from ktrdr.store.manifest import Manifest
    from ktrdr.store.model_artifact import ModelArtifact

# torch, pandas and the manifest schema are imported where a model is read or written: listing
# the store ('ktrdr models list') reads JSON only and starts without them.

from ktrdr.store.archive import check_torch_archive, non_finite_weights
from ktrdr.store.layout import PICTURE_FILES, SCALER_FILE

logger = logging.getLogger(__name__)

_STRATEGY = re.compile(r"[A-Za-z0-9_-]{1,100}")
_VERSION_DIR = re.compile(r"(?P<symbols>[A-Za-z0-9._-]+)_(?P<timeframes>[0-9a-z-]+)_v(?P<n>\d+)")
_SET_LATEST = re.compile(r"(?P<symbols>[A-Za-z0-9._-]+)_(?P<timeframes>[0-9a-z-]+)_latest")
_LATEST = "latest"
_TMP_PREFIX = ".tmp-"
_HASHED_FILES = ("model.pt", SCALER_FILE, "metrics.json", "config.yaml", *PICTURE_FILES)


@dataclass(frozen=True)
class SavedModel:
    """Where a saved version lives, and its content digest (``content_digest``)."""

    path: Path
    model_id: str
    version: int
    content_digest: str = ""


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
    is_latest: bool  # the strategy's newest version (``{strategy}/latest``)
    error: str | None = None
    # What set this version apart when it was trained: its overrides (``--set``, a sweep's grid)
    # and, for a sweep member, ``{"name", "run_id"}``.
    overrides: dict[str, Any] | None = None
    sweep: dict[str, str] | None = None
    seed: int | None = None
    # The newest version of its symbol set (``{strategy}/{SYMBOLS}_{TIMEFRAMES}_latest``).
    is_set_latest: bool = False
    # The version's test metrics as stored (not checked: ``ktrdr.training.verdict.stored_verdict``
    # reads them into the verdict that listings show), None when unreadable.
    test_metrics: dict[str, Any] | None = None


class ModelStorage:
    """Save, list, load and delete model versions under one models folder."""

    def __init__(self, models_dir: str | os.PathLike[str] | None = None) -> None:
        self.root = settings.models_dir(models_dir).absolute()

    # --- saving ---------------------------------------------------------------------------

    def check_can_save(self, strategy: str, symbols: list[str], timeframes: list[str]) -> None:
        """Fail now, naming the path, if saving this run's version would fail after training.

        Checks that the store (or its nearest existing parent) is a folder a file can be
        created in, that the version name fits the file-name limit, and that ``latest`` is a
        link and not a real file or folder. Raises ModelStorageError.
        """
        _check_strategy(strategy)
        folder = self.root / strategy
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is None or not existing.is_dir():
            raise ModelStorageError(
                f"the models path {existing or self.root} is a file, not a folder; "
                "set --models-dir or KTRDR_MODELS_DIR to a folder"
            )
        _probe_writable(existing)
        name = f"{_stem(symbols, timeframes)}_v{_MAX_VERSION_DIGITS * '9'}"
        limit = _name_max(existing)
        if len(name.encode()) > limit:
            raise ModelStorageError(
                f"the version folder name for {len(symbols)} symbol(s) and {len(timeframes)} "
                f"timeframe(s) would be {len(name.encode())} bytes, over the {limit}-byte file "
                f"name limit of {existing}; train fewer symbols per model"
            )
        _check_latest_is_a_link(folder)
        _check_latest_is_a_link(folder, f"{_stem(symbols, timeframes)}_{_LATEST}")

    def save_model(self, artifact: ModelArtifact) -> SavedModel:
        """Write ``artifact`` as its symbol set's next version; point that set's ``_latest``
        and the strategy's ``latest`` at it.

        The version becomes visible by one rename once every file and the manifest are written
        and fsynced. If a link cannot be pointed at it, the links are put back, the version is
        removed again and ModelStorageError raised: a save either completes, or leaves the store
        as it was.
        """
        from ktrdr.store.artifact_checks import check_artifact

        strategy = _check_strategy(str(artifact.config.get("name") or ""))
        # Its manifest's names become the version's path: nothing is written before they pass.
        check_artifact(artifact, f"the model of {strategy}")
        symbols = artifact.manifest["symbols"]
        timeframes = artifact.manifest["timeframes"]
        self.check_can_save(strategy, symbols, timeframes)
        stem = _stem(symbols, timeframes)
        folder = self.root / strategy
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelStorageError(f"cannot create {folder}: {exc.strerror}") from exc
        with exclusive_lock(folder / ".lock"):
            _remove_stale_temporaries(folder)
            _check_latest_is_a_link(folder)
            set_link = f"{stem}_{_LATEST}"
            _check_latest_is_a_link(folder, set_link)
            version = 1 + max(
                (v for path, v in _versions(folder) if _stem_of(path.name) == stem), default=0
            )
            # A folder that only looks like a version (no manifest) keeps its name.
            while (folder / f"{stem}_v{version}").exists():
                version += 1
            name = f"{stem}_v{version}"
            temporary = folder / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
            written = temporary  # where the version's files are: renamed once complete
            try:
                temporary.mkdir()
                _write_version(temporary, artifact, f"{strategy}/{name}")
                fsync_dir(temporary)
                os.rename(temporary, folder / name)
                written = folder / name
                fsync_dir(folder)
            except BaseException as exc:
                shutil.rmtree(written, ignore_errors=True)
                if isinstance(exc, OSError):
                    raise ModelStorageError(
                        f"cannot write model version {folder / name}: {exc.strerror or exc}"
                        f"{_space_hint(exc, self.root)}; nothing was saved"
                    ) from exc
                raise
            before = {link: _latest_name(folder, link) for link in (set_link, _LATEST)}
            try:
                for link in before:
                    _point_latest(folder, name, link)
            except BaseException as exc:
                for link, target in before.items():
                    _restore_link(folder, link, target)
                shutil.rmtree(folder / name, ignore_errors=True)
                fsync_dir(folder)
                if isinstance(exc, OSError):
                    raise ModelStorageError(
                        f"cannot point {folder / 'latest'} at {name} ({exc.strerror or exc}); "
                        "the new version was removed again"
                    ) from exc
                raise
        path = folder / name
        logger.info("saved model %s/%s at %s", strategy, name, path)
        return SavedModel(
            path=path,
            model_id=f"{strategy}/{name}",
            version=version,
            content_digest=content_digest(path),
        )

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
            found = _versions(folder)
            newest_of_sets = set(_newest_per_set(found).values())
            versions = [
                _info(name, version_dir, version, version_dir.name == latest)
                for version_dir, version in found
            ]
            versions = _oldest_first(versions)
            infos += [
                dataclasses.replace(info, is_set_latest=info.name in newest_of_sets)
                for info in versions
            ]
        return infos

    def resolve(self, path_or_id: str | os.PathLike[str], symbol: str | None = None) -> Path:
        """The version folder for a path, a ``strategy/version`` id, ``strategy/latest`` or a
        symbol set's ``strategy/{SYMBOLS}_{TIMEFRAMES}_latest``.

        With ``symbol``, ``strategy/latest`` is the newest version trained on that symbol: the
        ``_latest`` of the one symbol set holding it. Raises ModelStorageError when no set holds
        it, or more than one does (naming the choices), rather than hand another set's model.
        An id must lead to a version of the store: a ``latest`` link, or a version-named link,
        that leads anywhere else (an edited link, ``../../elsewhere``) is refused. A path names
        the folder it names.
        """
        parts = str(path_or_id).strip("/").split("/")
        if (
            symbol is not None
            and len(parts) == 2
            and parts[1] == _LATEST
            and _STRATEGY.fullmatch(parts[0])
            and not (Path(path_or_id) / "manifest.json").exists()
        ):
            # The link asked for is checked even though the symbol chooses: a tampered
            # ``latest`` is refused, never passed over in silence.
            _check_latest_target(self.root / parts[0] / _LATEST)
            path_or_id = f"{parts[0]}/{self._newest_for(parts[0], symbol)}"
        candidate = Path(path_or_id)
        if candidate.is_dir() and (candidate / "manifest.json").exists():
            _check_latest_target(candidate)
            return candidate.resolve()
        text = str(path_or_id).strip("/")
        parts = text.split("/")
        if (
            len(parts) == 2
            and _STRATEGY.fullmatch(parts[0])
            and (
                parts[1] == _LATEST
                or _VERSION_DIR.fullmatch(parts[1])
                or _SET_LATEST.fullmatch(parts[1])
            )
        ):
            folder = self.root / parts[0] / parts[1]
            _check_latest_target(folder)
            if folder.is_dir():
                resolved = folder.resolve()
                if resolved.parent != folder.parent.resolve():  # a version-named link
                    raise ModelStorageError(
                        f"{folder} leads to {shorten(str(resolved))}, not to a version of the "
                        "store; refusing to follow it out of the model store"
                    )
                return resolved
        if candidate.exists() and candidate.is_dir():
            raise ModelStorageError(
                f"{shorten(str(path_or_id))} is a folder without manifest.json; not a complete "
                "model version"
            )
        raise ModelStorageError(
            f"no model at {shorten(str(path_or_id))!r}; give a version folder or an id such as "
            f"neuro_mean_reversion/latest (see 'ktrdr models list', store {self.root})"
        )

    def _newest_for(self, strategy: str, symbol: str) -> str:
        """The newest version of the one symbol set of ``strategy`` that holds ``symbol``;
        ModelStorageError naming the sets (their ``_latest`` ids) when none or several do."""
        folder = self.root / strategy
        newest = _newest_per_set(_versions(folder) if folder.is_dir() else [])
        # The symbols as the manifest lists them: a name may itself hold "-" or "_" (BTC-USD).
        holding = sorted(
            stem
            for stem, name in newest.items()
            if symbol in _manifest_list(folder / name, "symbols")
        )
        if len(holding) == 1:
            # The set's own link, checked like any link on the way; a store from before the
            # links were kept has only the version.
            link = f"{holding[0]}_{_LATEST}"
            return link if (folder / link).is_symlink() else newest[holding[0]]
        choices = ", ".join(f"{strategy}/{stem}_{_LATEST}" for stem in (holding or sorted(newest)))
        if holding:
            raise ModelStorageError(
                f"{strategy}/latest is ambiguous for {symbol}: {len(holding)} symbol sets hold "
                f"it ({choices}); name one of them"
            )
        raise ModelStorageError(
            f"no version of {strategy} was trained on {symbol} (its symbol sets: "
            f"{choices or 'none'}); name a version to predict a symbol it never saw, or train "
            "one on it"
        )

    def load(self, path_or_id: str | os.PathLike[str]) -> ModelArtifact:
        """The verified artifact of one version; ModelStorageError if missing, tampered,
        truncated or written by a newer format."""
        return load_version(self.resolve(path_or_id))

    def plot(self, path_or_id: str | os.PathLike[str]) -> list[Path]:
        """Draw a version's pictures again from its metrics (also for versions saved before
        pictures existed) and list them, with their hashes, in its manifest.

        The version is verified first; pictures and manifest are replaced by atomic renames under
        the strategy's lock. Returns the pictures' paths.
        """
        from ktrdr.store.plots import render_pictures

        path = self.resolve(path_or_id)
        artifact = load_version(path)  # verified: never re-hash a damaged version
        pictures = render_pictures(artifact.metrics)
        with exclusive_lock(path.parent / ".lock"):
            manifest = json.loads((path / "manifest.json").read_text())
            for name, picture in pictures.items():
                atomic_write_bytes(path / name, picture)
                manifest["files"][name] = hashlib.sha256(picture).hexdigest()
            atomic_write(
                path / "manifest.json",
                lambda stream: stream.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n"),
            )
        logger.info("drew %d picture(s) for %s", len(pictures), path)
        return [path / name for name in pictures]

    def delete_model(self, path_or_id: str | os.PathLike[str]) -> None:
        """Remove one version; a link to it moves to the newest remaining version (of its set
        for the set's ``_latest``, of any set for ``latest``), or goes with the last one."""
        path = self.resolve(path_or_id)
        folder = path.parent
        if folder.parent.resolve() != self.root.resolve():
            raise ModelStorageError(f"{path} is not inside the model store {self.root}")
        with exclusive_lock(folder / ".lock"):
            stem = _stem_of(path.name)
            set_link = f"{stem}_{_LATEST}"
            pointing = [
                link for link in (set_link, _LATEST) if _latest_name(folder, link) == path.name
            ]
            shutil.rmtree(path)
            remaining = _versions(folder)
            for link in pointing:
                candidates = (
                    [(v, p.name) for p, v in remaining if _stem_of(p.name) == stem]
                    if link == set_link
                    else [(_created_at(p), p.name) for p, _ in remaining]
                )
                if candidates:
                    _point_latest(folder, max(candidates)[1], link)
                else:
                    (folder / link).unlink(missing_ok=True)
        logger.info("deleted model %s", path)


def load_version(path: Path) -> ModelArtifact:
    """Read and verify one version folder (see ``ModelStorage.load``).

    Nothing in the folder is trusted before it is checked: the manifest against a strict schema
    (its ``files`` must list exactly the files its own fields imply), every file against its
    sha256, the resolved strategy against the manifest, and the weight shapes against the
    architecture before any model is built. Raises ModelStorageError naming the path.
    """
    if not path.is_dir():
        raise ModelStorageError(f"{path}: not a folder; give a model version folder or id")
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise ModelStorageError(
            f"{path}: no manifest.json; not a complete model version (an interrupted save "
            "or a folder made by hand)"
        )
    try:
        document = json.loads(_read_bounded(manifest_path, MAX_MANIFEST_BYTES))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelStorageError(f"{manifest_path}: unreadable JSON ({shorten(exc)})") from None
    from ktrdr.store.manifest import check_manifest
    from ktrdr.store.model_artifact import ModelArtifact
    from ktrdr.store.scaler import ScalerParams

    checked = check_manifest(document, str(manifest_path))
    files = checked.files
    on_disk = {name for name in _HASHED_FILES if (path / name).exists()}
    unlisted = sorted(on_disk - set(files))
    if unlisted:
        raise ModelStorageError(
            f"{path}: {', '.join(unlisted)} exists but the manifest does not list it "
            f"(scaled={checked.scaled}); the version was edited, retrain or restore it"
        )
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise ModelStorageError(f"{path}: {name} is missing")
        if _sha256(file) != expected:
            raise ModelStorageError(
                f"{file}: sha256 does not match the manifest; the file was changed or truncated "
                "after saving. Retrain or restore it from a backup"
            )
    try:
        metrics = json.loads((path / "metrics.json").read_text())
        config = yaml.safe_load((path / "config.yaml").read_text())
        scaler = None
        if SCALER_FILE in files:
            scaler = ScalerParams.from_dict(json.loads((path / SCALER_FILE).read_text()))
    except Exception as exc:
        raise ModelStorageError(f"{path}: cannot be loaded ({shorten(exc)})") from exc
    _check_config_matches(config, checked, path)
    if scaler is not None and list(scaler.feature_names) != checked.feature_names:
        raise ModelStorageError(f"{path}/{SCALER_FILE}: its features differ from the manifest's")
    state = _load_weights(path / "model.pt", checked)
    manifest = {k: v for k, v in document.items() if k != "files"}
    return ModelArtifact(
        state_dict=state,
        architecture=manifest["architecture"],
        manifest=manifest,
        scaler=scaler,
        metrics=metrics,
        config=config,
    )


MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def _read_bounded(path: Path, limit: int) -> str:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ModelStorageError(f"{path}: larger than {limit // (1024 * 1024)} MiB; not a manifest")
    return data.decode("utf-8")


def _check_config_matches(config: Any, manifest: Manifest, path: Path) -> None:
    """The resolved strategy (config.yaml) must describe the features the manifest names."""
    from ktrdr.config.features import feature_names

    if not isinstance(config, dict):
        raise ModelStorageError(f"{path}/config.yaml: not a strategy mapping")
    try:
        names = feature_names(config, manifest.timeframes)
        same = (
            config["indicators"] == manifest.indicators
            and config["fuzzy_sets"] == manifest.fuzzy_sets
            and names == manifest.feature_names
        )
    except (KeyError, TypeError, DataError):
        same = False
    if not same:
        raise ModelStorageError(
            f"{path}: config.yaml and manifest.json describe different features; the version "
            "was edited, retrain or restore it"
        )


def _load_weights(path: Path, manifest: Manifest) -> dict[str, torch.Tensor]:
    import torch

    expected = manifest.architecture.weight_shapes()
    check_torch_archive(path, str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelStorageError(f"{path}: not a readable state dict ({shorten(exc)})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelStorageError(f"{path}: not a state dict")
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    if shapes != expected:
        raise ModelStorageError(
            f"{path}: weight shapes do not match the architecture in the manifest "
            f"({shorten(shapes)} against {shorten(expected)})"
        )
    broken = non_finite_weights(state)
    if broken:
        raise ModelStorageError(
            f"{path}: weights {shorten(', '.join(broken))} hold NaN or infinite values; the "
            "model cannot predict anything meaningful, retrain it"
        )
    return state


def content_digest(path: Path) -> str:
    """sha256 over the manifest and every file it lists, by name: equal digests, equal models.

    The manifest holds the other files' hashes but not its own, so a change to any file of the
    version, the manifest included, changes the digest.
    """
    digest = hashlib.sha256()
    manifest_path = path / "manifest.json"
    names = ["manifest.json", *sorted(json.loads(manifest_path.read_text()).get("files", {}))]
    for name in names:
        digest.update(name.encode() + b"\0")
        digest.update(bytes.fromhex(_sha256(path / name)))
    return digest.hexdigest()


def _write_version(folder: Path, artifact: ModelArtifact, model_id: str) -> None:
    import torch

    # Serialised in memory and written as plain bytes: torch.save writing to a file turns a
    # full disk into "unexpected pos ..." (a RuntimeError), a plain write into OSError(ENOSPC).
    buffer = io.BytesIO()
    torch.save(
        {k: v.detach().cpu().contiguous() for k, v in artifact.state_dict.items()},
        buffer,
    )
    (folder / "model.pt").write_bytes(buffer.getbuffer())
    if artifact.scaler is not None:
        _write_text(folder / "scaler.json", json.dumps(artifact.scaler.to_dict(), indent=2))
    _write_text(folder / "metrics.json", json.dumps(artifact.metrics, indent=2, sort_keys=True))
    _write_text(folder / "config.yaml", yaml.safe_dump(artifact.config, sort_keys=False))
    from ktrdr.store.plots import render_pictures

    for name, picture in render_pictures(artifact.metrics).items():
        (folder / name).write_bytes(picture)
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


def _space_hint(exc: OSError, root: Path) -> str:
    """What to do when a write failed for want of room, or nothing for any other failure."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f" (free space where {root} lives, or set KTRDR_MODELS_DIR elsewhere)"
    return ""


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
        if match and path.is_dir() and not path.is_symlink() and (path / "manifest.json").is_file():
            found.append((path, int(match.group("n"))))
    return found


def _remove_stale_temporaries(folder: Path) -> None:
    # Called under the lock: any temporary folder now is left over from a crashed save.
    for path in folder.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
        logger.info("removed a half-written version left by an interrupted save: %s", path)


def _point_latest(folder: Path, name: str, link: str = _LATEST) -> None:
    temporary = folder / f".latest-{uuid.uuid4().hex}"
    os.symlink(name, temporary)
    try:
        os.replace(temporary, folder / link)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def _restore_link(folder: Path, link: str, target: str | None) -> None:
    """Put ``link`` back as it was before a save that failed: at ``target``, or gone."""
    try:
        if target is None:
            (folder / link).unlink(missing_ok=True)
        elif _latest_name(folder, link) != target:
            _point_latest(folder, target, link)
    except OSError as exc:
        logger.warning("could not put %s back at %s: %s", folder / link, target, exc)


def _stem_of(version_name: str) -> str:
    """``EURUSD_1h`` of ``EURUSD_1h_v3``."""
    return version_name.rsplit("_v", 1)[0]


def _oldest_first(versions: list[ModelInfo]) -> list[ModelInfo]:
    """A strategy's versions, oldest first: each symbol set's in number order (the order they
    were saved in), the sets interleaved by when their versions were built. Numbers count per
    set, and parallel workers stamp ``created_at`` when they build, not when the store saves,
    so a version may carry an earlier stamp than the one before it: it sorts at that one's
    time instead."""
    by_set: dict[str, list[ModelInfo]] = {}
    for info in versions:
        by_set.setdefault(_stem_of(info.name), []).append(info)
    keyed = []
    for infos in by_set.values():
        latest = ""
        for info in sorted(infos, key=lambda i: i.version):
            latest = max(latest, info.created_at)
            keyed.append(((latest, info.version, info.name), info))
    return [info for _, info in sorted(keyed, key=lambda pair: pair[0])]


def _newest_per_set(found: list[tuple[Path, int]]) -> dict[str, str]:
    """Each symbol set's newest version name: its highest number, what its _latest names."""
    newest: dict[str, tuple[int, str]] = {}
    for path, version in found:
        stem = _stem_of(path.name)
        newest[stem] = max(newest.get(stem, (0, "")), (version, path.name))
    return {stem: name for stem, (_, name) in newest.items()}


def _quiet_manifest(path: Path) -> dict[str, Any]:
    """A version's manifest as JSON, unchecked, {} when it cannot be read: for choosing and
    ordering versions, never for loading one."""
    try:
        manifest = json.loads(_read_bounded(path / "manifest.json", MAX_MANIFEST_BYTES))
    except (OSError, ValueError, RecursionError, ModelStorageError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _manifest_list(path: Path, key: str) -> list[str]:
    """The names a version's manifest lists under ``key`` ([] when unreadable)."""
    value = _quiet_manifest(path).get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def _created_at(path: Path) -> str:
    """A version's creation time as its manifest says (ISO, UTC), "" when unreadable."""
    created = _quiet_manifest(path).get("created_at")
    return created if isinstance(created, str) else ""


def _check_latest_target(path: Path) -> None:
    """A ``latest`` link (the strategy's or a set's) must name a version folder in its own
    strategy folder."""
    if not (path.name == _LATEST or _SET_LATEST.fullmatch(path.name)) or not path.is_symlink():
        return
    target = os.readlink(path)
    if not _VERSION_DIR.fullmatch(target) or (path.parent / target).resolve().parent != (
        path.parent.resolve()
    ):
        raise ModelStorageError(
            f"{path} points at {shorten(target)!r}, not at a version beside it; refusing to "
            "follow it out of the model store"
        )


def _check_latest_is_a_link(folder: Path, link: str = _LATEST) -> None:
    latest = folder / link
    if latest.exists() and not latest.is_symlink():
        kind = "folder" if latest.is_dir() else "file"
        raise ModelStorageError(
            f"{latest} is a real {kind}, not the link ktrdr keeps to the newest version; "
            "move it out of the model store"
        )


_MAX_VERSION_DIGITS = 6


def _stem(symbols: list[str], timeframes: list[str]) -> str:
    return f"{'-'.join(symbols)}_{'-'.join(timeframes)}"


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in ``folder`` (permission bits do not bind root; this does)."""
    try:
        handle, name = tempfile.mkstemp(prefix=".ktrdr-write-check-", dir=folder)
    except OSError as exc:
        raise ModelStorageError(
            f"cannot write to the model store folder {folder} ({exc.strerror}); make it "
            "writable or set --models-dir / KTRDR_MODELS_DIR"
        ) from exc
    os.close(handle)
    os.unlink(name)


def _latest_name(folder: Path, name: str = _LATEST) -> str | None:
    link = folder / name
    return os.readlink(link) if link.is_symlink() else None


def _check_strategy(name: str) -> str:
    if not _STRATEGY.fullmatch(name or ""):
        raise ModelStorageError(f"invalid strategy name {name!r}; use letters, digits, _ and -")
    return name


def _mapping(value: Any) -> Any:
    return value if isinstance(value, dict) else None


def _info(strategy: str, path: Path, version: int, is_latest: bool) -> ModelInfo:
    """What a listing shows of one version; a damaged one gets ``error`` instead of failing."""
    manifest: Any = {}
    metrics: Any = {}
    error = None
    try:
        manifest = json.loads(_read_bounded(path / "manifest.json", MAX_MANIFEST_BYTES))
        metrics = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError, RecursionError, ModelStorageError) as exc:
        error = f"unreadable: {shorten(exc)}"
    if not isinstance(manifest, dict) or not isinstance(metrics, dict):
        manifest, metrics, error = {}, {}, "unreadable: not a JSON object"
    test = metrics.get("test_metrics")
    test = test if isinstance(test, dict) else {}

    def names(key: str) -> list[str]:
        value = manifest.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []

    def number(value: Any) -> float | None:
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    return ModelInfo(
        strategy=strategy,
        name=path.name,
        version=version,
        path=path,
        model_id=f"{strategy}/{path.name}",
        symbols=names("symbols"),
        timeframes=names("timeframes"),
        created_at=shorten(manifest.get("created_at", ""), 40),
        test_accuracy=number(test.get("accuracy")),
        baseline_accuracy=number(test.get("baseline_accuracy")),
        is_latest=is_latest,
        error=error,
        overrides=_mapping(manifest.get("overrides")),
        sweep=_mapping(manifest.get("sweep")),
        seed=manifest.get("seed") if isinstance(manifest.get("seed"), int) else None,
        test_metrics=test or None,
    )
