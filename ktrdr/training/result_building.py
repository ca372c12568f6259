"""Step 11: the result dict of a training run, and its validation.

See docs/architecture.md: the executor and the facade.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ktrdr.errors import TrainingError
from ktrdr.store.model_storage import SavedModel
from ktrdr.training.data_split import SPLITS, DataSplits
from ktrdr.training.model_training import TrainingOutcome
from ktrdr.training.run_spec import EXECUTION_PATHS
from ktrdr.training.verdict import stored_verdict

_REQUIRED = (
    "success",
    "model_path",
    "model_id",
    "training_metrics",
    "test_metrics",
    "feature_names",
    "feature_importance",
    "config",
    "metadata",
)
_TEST_KEYS = (
    "loss",
    "accuracy",
    "precision",
    "recall",
    "f1_score",
    "precision_weighted",
    "recall_weighted",
    "f1_score_weighted",
    "baseline_accuracy",
    "confusion_matrix",
    "support",
)
_METADATA_KEYS = (
    "start_time",
    "end_time",
    "duration_seconds",
    "device",
    "symbols",
    "timeframes",
    "start_date",
    "end_date",
    "total_samples",
    "training_samples",
    "validation_samples",
    "test_samples",
    "splits",
    "execution_path",
)
_TIME_WORDS = ("time", "duration", "seconds", "timestamp")


def training_metrics(outcome: TrainingOutcome, epochs_configured: int) -> dict[str, Any]:
    """Values at the restored best epoch, per-epoch lists and the full history (no times)."""
    best = outcome.history[outcome.best_epoch - 1]
    history = [dict(h) for h in outcome.history]
    return {
        "best_epoch": outcome.best_epoch,
        "best_train_loss": best["train_loss"],
        "best_train_accuracy": best["train_accuracy"],
        "best_val_loss": best["val_loss"],
        "best_val_accuracy": best["val_accuracy"],
        "epochs": len(history),
        "epochs_configured": epochs_configured,
        "stopped_by": outcome.stopped_by,
        "stop_reason": outcome.stop_reason,
        "class_weights": outcome.class_weights,
        "train_loss": [h["train_loss"] for h in history],
        "train_accuracy": [h["train_accuracy"] for h in history],
        "val_loss": [h["val_loss"] for h in history],
        "val_accuracy": [h["val_accuracy"] for h in history],
        "learning_rate": [h["learning_rate"] for h in history],
        "history": history,
    }


def build_results(
    *,
    strategy_config: Mapping[str, Any],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    requested_start: str,
    requested_end: str,
    splits: DataSplits,
    metrics: Mapping[str, Any],
    saved: SavedModel | None,
    device: str,
    execution_path: str,
    started: datetime,
    torch_threads: int | None = None,
    data_warnings: Sequence[str] = (),
    weights_digest: str | None = None,
) -> dict[str, Any]:
    """The §9 result of one run; ``metrics`` holds training_metrics, test_metrics,
    feature_importance (with feature_importance_spread) and per_symbol_test_metrics.
    ``metadata.warnings`` lists ``data_warnings`` (what steps 1-5 left out) and then the
    splits' own. ``metadata.weights_digest`` is ``weights_digest``, the sha256 of the weights'
    tensors (``state_dict_digest``): equal on both paths, compared by shadow runs."""
    finished = datetime.now(UTC)
    starts = [b["start"] for b in splits.boundaries["train"].values() if b["rows"]]
    ends = [b["end"] for b in splits.boundaries["test"].values() if b["rows"]]
    split_summary = {
        name: {
            "start": min(b["start"] for b in splits.boundaries[name].values() if b["rows"]),
            "end": max(b["end"] for b in splits.boundaries[name].values() if b["rows"]),
            "rows": len(splits.part(name)),
            "class_counts": splits.class_counts[name]["all"],
            "per_symbol": {
                s: {**splits.boundaries[name][s], "class_counts": splits.class_counts[name][s]}
                for s in symbols
            },
        }
        for name in SPLITS
    }
    training = strategy_config["training"]
    return {
        "success": True,
        "model_path": str(saved.path.absolute()) if saved else None,
        "model_id": saved.model_id if saved else None,
        "content_digest": saved.content_digest if saved else None,
        "training_metrics": dict(metrics["training_metrics"]),
        "test_metrics": dict(metrics["test_metrics"]),
        "feature_names": list(splits.feature_names),
        "feature_importance": dict(metrics["feature_importance"]),
        "feature_importance_spread": dict(metrics.get("feature_importance_spread") or {}),
        "verdict": _sentences(metrics["test_metrics"]),
        "config": {
            "strategy_config": dict(strategy_config),
            "training_config": dict(training),
            "model_config": dict(strategy_config["model"]),
            "data_config": {
                "symbols": list(symbols),
                "timeframes": list(timeframes),
                "start_date": requested_start,
                "end_date": requested_end,
                "labels": dict(training["labels"]),
                "data_split": training.get("data_split"),
            },
        },
        "metadata": {
            "start_time": started.isoformat(),
            "end_time": finished.isoformat(),
            "duration_seconds": round((finished - started).total_seconds(), 3),
            "device": device,
            "symbols": list(symbols),
            "timeframes": list(timeframes),
            "start_date": min(starts),
            "end_date": max(ends),
            "requested_start_date": requested_start,
            "requested_end_date": requested_end,
            "total_samples": sum(len(splits.part(n)) for n in SPLITS),
            "training_samples": len(splits.train),
            "validation_samples": len(splits.validation),
            "test_samples": len(splits.test),
            "splits": split_summary,
            "per_symbol_test_metrics": dict(metrics.get("per_symbol_test_metrics") or {}),
            "execution_path": execution_path,
            "torch_threads": torch_threads,
            "warnings": [*data_warnings, *splits.warnings],
            "weights_digest": weights_digest,
        },
    }


def attach_saved_model(result: Mapping[str, Any], saved: SavedModel | None) -> dict[str, Any]:
    """``result`` with where the model was saved, and its content digest, filled in.

    Results are built and validated before the save (a run that fails validation must leave no
    model), then completed here once the version exists.
    """
    completed = dict(result)
    if saved is not None:
        completed.update(
            model_path=str(saved.path.absolute()),
            model_id=saved.model_id,
            content_digest=saved.content_digest,
        )
    return completed


def validate_training_result(result: Mapping[str, Any]) -> Mapping[str, Any]:
    """Check the §9 contract: keys present, metrics finite, no times in the metrics, JSON-safe.

    Returns ``result``; raises TrainingError naming the first problem.
    """
    missing = [key for key in _REQUIRED if key not in result]
    if missing:
        raise TrainingError(f"training result lacks {', '.join(missing)}")
    test = result["test_metrics"]
    missing = [key for key in _TEST_KEYS if key not in test]
    if missing:
        raise TrainingError(f"test_metrics lack {', '.join(missing)}")
    missing = [key for key in _METADATA_KEYS if key not in result["metadata"]]
    if missing:
        raise TrainingError(f"metadata lacks {', '.join(missing)}")
    if result["metadata"]["execution_path"] not in EXECUTION_PATHS:
        raise TrainingError(f"unknown execution_path {result['metadata']['execution_path']!r}")
    for section in ("training_metrics", "test_metrics"):
        for key in _walk_keys(result[section]):
            if any(word in key for word in _TIME_WORDS):
                raise TrainingError(
                    f"{section} holds a time-like entry {key!r}; times belong "
                    "in metadata, so that identical runs compare equal"
                )
    for key in ("accuracy", "baseline_accuracy", "f1_score", "precision", "recall"):
        value = test[key]
        if not (isinstance(value, float | int) and 0.0 <= value <= 1.0):
            raise TrainingError(f"test_metrics.{key}={value!r} is not in [0, 1]")
    if not math.isfinite(test["loss"]):
        raise TrainingError(f"test_metrics.loss={test['loss']!r} is not finite")
    bad = _first_non_finite(result)
    if bad is not None:
        raise TrainingError(
            f"training result holds a non-finite number at {bad}; training diverged or a "
            "split is degenerate (try a lower training.learning_rate, or check the class counts)"
        )
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"training result is not JSON-serialisable ({exc})") from exc
    return result


def _first_non_finite(value: Any, path: str = "") -> str | None:
    """The key path of the first NaN or infinity inside ``value``, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path or 'the result'} ({value})"
    if isinstance(value, Mapping):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for inner_path, inner in items:
        found = _first_non_finite(inner, inner_path)
        if found is not None:
            return found
    return None


def _walk_keys(value: Any) -> list[str]:
    keys: list[str] = []
    if isinstance(value, Mapping):
        for key, inner in value.items():
            keys.append(str(key))
            keys.extend(_walk_keys(inner))
    elif isinstance(value, list):
        for inner in value:
            keys.extend(_walk_keys(inner))
    return keys


def _sentences(test_metrics: Mapping[str, Any]) -> list[str]:
    """The verdict in plain words: the sentences of the one verdict object."""
    found = stored_verdict(test_metrics)
    return list(found["sentences"]) if found else []
