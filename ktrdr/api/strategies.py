"""``GET /strategies``: the strategy files and what the model store holds for each."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ktrdr.config.loader import MAX_STRATEGY_BYTES, parse_strategy_text, read_text_file
from ktrdr.errors import StrategyConfigError
from ktrdr.store.model_storage import ModelInfo, ModelStorage
from ktrdr.training.verdict import listing_fields, stored_verdict

logger = logging.getLogger(__name__)


def list_strategies(folder: Path, storage: ModelStorage) -> list[dict[str, Any]]:
    """One entry per ``*.yaml`` in ``folder``: name, file, trained, versions, latest_version,
    latest_metrics (the latest version's test accuracy, both baselines, the p-value and the
    verdict object) and, for a file that does not parse, error."""
    entries = []
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    for path in files:
        entry: dict[str, Any] = {"file": path.name, "name": path.stem, "error": None}
        try:
            # The same reader as `ktrdr train`: a FIFO or a device named *.yaml is refused
            # without blocking the request or reading past the strategy size limit.
            text = read_text_file(path, MAX_STRATEGY_BYTES, path.name, "strategy")
            raw = parse_strategy_text(text, path.name)
            if isinstance(raw.get("name"), str):
                entry["name"] = raw["name"]
        except StrategyConfigError as exc:  # one broken file must not hide the others
            entry["error"] = f"cannot read: {exc}"
        try:
            versions = [m for m in storage.list_models(entry["name"]) if m.error is None]
        except Exception as exc:
            versions, entry["error"] = [], f"cannot list models: {exc}"
        latest = next((m for m in versions if m.is_latest), versions[-1] if versions else None)
        entry.update(
            trained=bool(versions),
            versions=len(versions),
            latest_version=None if latest is None else latest.name,
            latest_model_id=None if latest is None else latest.model_id,
            latest_metrics=None if latest is None else _latest_metrics(latest),
        )
        entries.append(entry)
    return entries


def _latest_metrics(latest: ModelInfo) -> dict[str, Any]:
    return {
        "test_accuracy": latest.test_accuracy,
        # The training split's majority, kept under its old name; the verdict has both.
        "baseline_accuracy": latest.baseline_accuracy,
        **listing_fields(stored_verdict(latest.test_metrics)),
        "created_at": latest.created_at,
    }
