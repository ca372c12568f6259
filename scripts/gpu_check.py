"""GPU check (issue 4): train the real strategy on cuda end to end, then reload and predict.

Run on a machine with an NVIDIA GPU, with KTRDR_DATA_DIR holding the EURUSD 1h sample:
    KTRDR_DATA_DIR=... python scripts/gpu_check.py
Prints one JSON report; exits non-zero if any check fails.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ktrdr.config import load_strategy_config  # noqa: E402
from ktrdr.data.store import load_bars  # noqa: E402
from ktrdr.training.device_detection import detect_training_device  # noqa: E402
from ktrdr.training.evaluation import predict_logits  # noqa: E402
from ktrdr.training.feature_pipeline import build_features  # noqa: E402
from ktrdr.training.feature_scaling import apply_scaler  # noqa: E402
from ktrdr.training.inference import load_model  # noqa: E402
from ktrdr.training.model_storage import ModelStorage  # noqa: E402
from tests.training_helpers import train_with_steps  # noqa: E402


def main() -> int:
    report: dict[str, object] = {
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    checks: dict[str, bool] = {}
    device = detect_training_device()
    report["device"] = device
    checks["auto device is cuda"] = device.startswith("cuda")
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    config = load_strategy_config(ROOT / "strategies" / "neuro_mean_reversion.yaml")
    start = time.perf_counter()
    run = train_with_steps(
        config,
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-09-30",
        Path(sys.argv[1]) if len(sys.argv) > 1 else None,
        device=device,
    )
    report["train_evaluate_importance_seconds"] = round(time.perf_counter() - start, 2)
    parameter_device = next(run.model.parameters()).device.type
    checks["model trained on cuda"] = (
        run.outcome.device.startswith("cuda") and parameter_device == "cuda"
    )
    report["epochs"] = len(run.outcome.history)
    report["best_epoch"] = run.outcome.best_epoch
    report["stopped_by"] = run.outcome.stopped_by
    report["test_metrics"] = {
        k: run.test_metrics[k] for k in ("accuracy", "baseline_accuracy", "f1_score", "loss")
    }
    checks["test metrics finite and in [0, 1]"] = all(
        0 <= run.test_metrics[k] <= 1 for k in ("accuracy", "baseline_accuracy", "f1_score")
    )
    checks["confusion matrix sums to test rows"] = sum(
        map(sum, run.test_metrics["confusion_matrix"])
    ) == len(run.splits.test)
    with tempfile.TemporaryDirectory() as models_dir:
        saved = ModelStorage(models_dir).save_model(run.artifact)
        loaded = load_model(saved.path)  # CPU
        bars = load_bars(
            "EURUSD",
            "1h",
            "2017-10-01",
            "2017-10-31",
            history_bars=loaded.stable_history_bars["1h"],
        )
        cpu_predictions = loaded.predict(bars)
        features = build_features({"1h": bars}, run.artifact.config)
        scaled = apply_scaler(features, run.artifact.scaler) if run.artifact.scaler else features
        gpu_logits = predict_logits(run.model, scaled.to_numpy(np.float32), device)
        gpu_probabilities = torch.softmax(torch.from_numpy(gpu_logits).double(), 1).numpy()
        cpu_probabilities = cpu_predictions[["prob_buy", "prob_hold", "prob_sell"]].to_numpy()
        difference = float(np.abs(gpu_probabilities - cpu_probabilities).max())
        disagreements = int((gpu_probabilities.argmax(1) != cpu_probabilities.argmax(1)).sum())
    report["saved_as"] = saved.model_id
    report["october_predictions"] = len(cpu_predictions)
    report["max_probability_difference_cuda_vs_reloaded_cpu"] = difference
    report["class_disagreements"] = disagreements
    # Every bar after the warm-up gets a prediction (the warm-up lies in the loaded history).
    checks["reloaded model predicts every bar after warm-up"] = (
        len(cpu_predictions) == len(bars) - loaded.manifest["warmup_bars"]["1h"]
    )
    checks["cuda and reloaded cpu agree (1e-4)"] = difference < 1e-4
    report["checks"] = checks
    print(json.dumps(report, indent=2, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
