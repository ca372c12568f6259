"""Step 8: test metrics, with the majority-class baseline beside them (DESIGN.md §9)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from ktrdr.errors import DataError
from ktrdr.training.label_generation import CLASS_NAMES

logger = logging.getLogger(__name__)

NUM_CLASSES = len(CLASS_NAMES)


@torch.no_grad()
def predict_logits(
    model: nn.Module, features: np.ndarray, device: str, chunk: int = 65_536
) -> np.ndarray:
    """Logits of ``model`` (eval mode) for float features, computed on ``device``."""
    was_training = model.training
    model.eval()
    model.to(device)
    outputs = []
    x = torch.as_tensor(np.ascontiguousarray(features, dtype=np.float32), device=device)
    for start in range(0, len(x), chunk):
        outputs.append(model(x[start : start + chunk]).float().cpu().numpy())
    model.train(was_training)
    if not outputs:
        return np.empty((0, NUM_CLASSES), dtype=np.float32)
    return np.concatenate(outputs)


def evaluate_model(
    model: nn.Module,
    X_test: np.ndarray,
    y_test: np.ndarray,
    device: str,
    *,
    majority_class: int | None = None,
) -> dict[str, Any]:
    """Loss, accuracy, macro and weighted precision/recall/F1, confusion matrix (rows true,
    columns predicted, BUY/HOLD/SELL), support, and ``baseline_accuracy``: the accuracy of always
    predicting ``majority_class`` (the training split's most common class).

    Without ``majority_class`` the test split's own majority is used and ``baseline_source`` says
    so. Raises DataError on empty or mismatched input. Nothing here depends on time.
    """
    if len(X_test) == 0 or len(X_test) != len(y_test):
        raise DataError(f"evaluate_model: {len(X_test)} feature rows and {len(y_test)} labels")
    labels = np.asarray(y_test, dtype=np.int64)
    logits = predict_logits(model, X_test, device)
    loss = float(
        nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    )
    metrics = classification_metrics(labels, logits.argmax(axis=1))
    source = "train"
    if majority_class is None:
        majority_class = int(np.bincount(labels, minlength=NUM_CLASSES).argmax())
        source = "test"
    metrics.update(
        loss=loss,
        baseline_accuracy=float((labels == majority_class).mean()),
        baseline_class=CLASS_NAMES[majority_class],
        baseline_source=source,
    )
    logger.info(
        "test accuracy %.4f (baseline %.4f), macro F1 %.4f",
        metrics["accuracy"],
        metrics["baseline_accuracy"],
        metrics["f1_score"],
    )
    return metrics


def classification_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class and averaged precision/recall/F1 and the confusion matrix.

    A class never predicted has precision 0; a class absent from ``labels`` has recall 0 and
    does not count towards the weighted averages (its support is 0).
    """
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    true_positive = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1).astype(float)
    predicted_count = matrix.sum(axis=0).astype(float)
    precision = np.divide(
        true_positive, predicted_count, out=np.zeros(NUM_CLASSES), where=predicted_count > 0
    )
    recall = np.divide(true_positive, support, out=np.zeros(NUM_CLASSES), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros(NUM_CLASSES), where=denominator > 0
    )
    weights = support / support.sum()
    return {
        "accuracy": float(true_positive.sum() / support.sum()),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1_score": float(f1.mean()),
        "precision_weighted": float((precision * weights).sum()),
        "recall_weighted": float((recall * weights).sum()),
        "f1_score_weighted": float((f1 * weights).sum()),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1_score": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(CLASS_NAMES)
        },
        "confusion_matrix": matrix.tolist(),
        "support": {name: int(support[i]) for i, name in enumerate(CLASS_NAMES)},
        "samples": int(support.sum()),
    }
