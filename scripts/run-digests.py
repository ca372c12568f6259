"""Digest of a run of every shipped strategy on the sample bars, on both training paths.

``python scripts/run-digests.py [OUT.json]``: trains each ``strategies/*.yaml`` on the 2017
sample (its own symbols and timeframes), once with ``USE_TRAINING_EXECUTOR=true`` and once with
``false``, saves each into a scratch models folder and prints one sha256 per run over every file
of the saved version. What a run's files record about when and how long it ran (timestamps,
durations, the run's own folder) is left out, so two runs of the same code on the same machine
give the same digest; anything else that changes (weights, metrics, pictures, scaler, manifest)
changes it. Used to show that a refactoring leaves every run as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ktrdr  # noqa: E402
from ktrdr.data.sample import write_sample_data  # noqa: E402

START, END = "2017-01-01", "2017-12-31"
# What a file records about the run rather than the model: left out of the digest.
VOLATILE = {
    "created_at",
    "started_at",
    "finished_at",
    "duration_s",
    "duration_seconds",
    "path",
    "model_path",
    "library_versions",
    "timestamp",
}


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def version_digest(folder: Path) -> dict[str, str]:
    """sha256 per file of a saved version; JSON files without their volatile keys."""
    digests = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".json":
            data = json.dumps(_stable(json.loads(data)), sort_keys=True).encode()
        digests[path.name] = hashlib.sha256(data).hexdigest()
    return digests


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        write_sample_data(data)
        for strategy in sorted((ROOT / "strategies").glob("*.yaml")):
            for flag in ("true", "false"):
                os.environ["USE_TRAINING_EXECUTOR"] = flag
                models = Path(scratch) / f"models-{strategy.stem}-{flag}"
                result = ktrdr.train_strategy(
                    ktrdr.load_strategy_config(strategy)["training_data"]["symbols"],
                    ktrdr.load_strategy_config(strategy)["training_data"]["timeframes"],
                    START,
                    END,
                    str(strategy),
                    models_dir=models,
                    data_dir=data,
                    threads=1,
                )
                files = version_digest(Path(result["model_path"]))
                whole = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
                name = f"{strategy.stem} executor={flag}"
                report[name] = {"digest": whole, "files": files}
                print(f"{name:48s} {whole[:16]}")
    os.environ.pop("USE_TRAINING_EXECUTOR", None)
    if out is not None:
        out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
