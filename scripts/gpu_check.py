"""GPU check: the real orchestrators train on CUDA end to end; the saved model reloads on CPU.

Run on a machine with an NVIDIA GPU:
    python scripts/gpu_check.py [DATA_DIR]
DATA_DIR defaults to a temporary store filled with the sample bars. Both execution paths
(``USE_TRAINING_EXECUTOR`` true and false) train the shipped strategy on ``cuda`` through
``StrategyTrainer``, save, and must give identical weights and metrics; the saved model reloads
on the CPU and predicts October like the CUDA model does. Prints one JSON report; exits non-zero
if any check fails. ``GPU_CHECK_DEVICE=cpu`` runs the same script on a machine without a GPU (its
cuda checks then fail, the others must pass).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _train(path_flag: str, data_dir: Path, models_dir: Path) -> tuple[dict[str, Any], Any]:
    from ktrdr.training.train_strategy import StrategyTrainer

    os.environ["USE_TRAINING_EXECUTOR"] = path_flag
    from ktrdr.training.run_spec import build_run_spec

    spec = build_run_spec(
        ROOT / "strategies" / "neuro_mean_reversion.yaml",
        ["EURUSD"],
        ["1h"],
        "2017-01-01",
        "2017-09-30",
        device=os.environ.get("GPU_CHECK_DEVICE", "cuda"),
        data_dir=data_dir,
        models_dir=models_dir,
    )
    run = StrategyTrainer().train(spec)
    return run.result, run.artifact


def main() -> int:
    from ktrdr.data.sample import write_sample_data
    from ktrdr.data.store import load_bars
    from ktrdr.inference.trained_model import TrainedModel, load_model
    from ktrdr.store.model_artifact import state_dict_digest
    from ktrdr.training.device_detection import detect_training_device
    from ktrdr.training.evaluation import predict_logits
    from ktrdr.training.feature_pipeline import build_features
    from ktrdr.training.feature_scaling import apply_scaler

    torch.set_num_threads(1)
    report: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    checks: dict[str, bool] = {}
    device = detect_training_device(os.environ.get("GPU_CHECK_DEVICE"))
    report["auto_device"] = device
    checks["auto device is cuda"] = device.startswith("cuda")
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(scratch) / "data"
        if len(sys.argv) <= 1:
            write_sample_data(data_dir)
        runs = {}
        for flag in ("true", "false"):
            started = time.perf_counter()
            result, artifact = _train(flag, data_dir, Path(scratch) / "models")
            runs[flag] = (result, artifact, time.perf_counter() - started)
        result, artifact, _ = runs["true"]
        reference, reference_artifact, _ = runs["false"]
        report["seconds_per_run"] = {flag: round(run[2], 2) for flag, run in runs.items()}
        report["execution_paths"] = [r[0]["metadata"]["execution_path"] for r in runs.values()]
        report["devices"] = [r[0]["metadata"]["device"] for r in runs.values()]
        checks["both paths trained on cuda"] = all(d.startswith("cuda") for d in report["devices"])
        checks["both paths give identical weights"] = state_dict_digest(
            artifact.state_dict
        ) == state_dict_digest(reference_artifact.state_dict)
        checks["both paths give identical metrics"] = all(
            result[key] == reference[key]
            for key in (
                "training_metrics",
                "test_metrics",
                "feature_importance",
                "feature_importance_spread",
            )
        )
        test = result["test_metrics"]
        report["test_metrics"] = {
            k: test[k] for k in ("accuracy", "baseline_accuracy", "p_value", "loss")
        }
        report["verdict"] = result["verdict"]
        checks["confusion matrix sums to test rows"] = (
            sum(map(sum, test["confusion_matrix"])) == result["metadata"]["test_samples"]
        )
        checks["content digest recorded"] = len(result.get("content_digest") or "") == 64
        loaded = load_model(result["model_path"])  # CPU
        bars = load_bars(
            "EURUSD",
            "1h",
            "2017-10-01",
            "2017-10-31",
            history_bars=loaded.stable_history_bars["1h"],
            data_dir=data_dir,
        )
        cpu = loaded.predict(bars, start="2017-10-01")
        on_gpu = TrainedModel(artifact).model.to(device)
        features = build_features({"1h": bars}, artifact.config)
        features = features[features.index >= cpu.index[0]]
        scaled = apply_scaler(features, artifact.scaler) if artifact.scaler else features
        gpu_logits = predict_logits(on_gpu, scaled.to_numpy(np.float32), device)
        gpu_probabilities = torch.softmax(torch.from_numpy(gpu_logits).double(), 1).numpy()
        cpu_probabilities = cpu[["prob_buy", "prob_hold", "prob_sell"]].to_numpy()
        difference = float(np.abs(gpu_probabilities - cpu_probabilities).max())
        report["october_predictions"] = len(cpu)
        report["max_probability_difference_cuda_vs_reloaded_cpu"] = difference
        report["class_disagreements"] = int(
            (gpu_probabilities.argmax(1) != cpu_probabilities.argmax(1)).sum()
        )
        checks["cuda and reloaded cpu agree (1e-4)"] = difference < 1e-4
        october = bars[bars.index >= "2017-10-01"]
        checks["every October bar predicted"] = cpu.index.equals(october.index)
    report["checks"] = checks
    print(json.dumps(report, indent=2, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
