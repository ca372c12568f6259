"""Figures for docs/sweeps.md: an 8-run sweep sequentially, on local processes and on Ray.

``python scripts/bench/sweep_figures.py``: the shipped strategy on the 2017 sample year, a grid
of 2 learning rates x 2 seeds x 2 timeframe sets (1h; 1h+4h), 10 epochs each. Prints one JSON
document: wall times (8 sequential ``ktrdr train`` commands; the same 8 trainings one after the
other in one process; the sweep on local processes, 2 at once; on a local Ray with 2 CPUs), the
fixed cost of starting Ray, and each backend's peak memory per worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

STRATEGY = ROOT / "strategies" / "neuro_mean_reversion.yaml"
SPEC = f"""
name: figures
strategy: {STRATEGY}
start: 2017-01-01
end: 2017-12-31
timeframe_sets: [[1h], [1h, 4h]]
grid:
  training.learning_rate: [0.001, 0.003]
  training.seed: [1, 2]
fixed: {{training.epochs: 10}}
save: none
max_parallel: 2
"""


def main() -> None:
    os.environ.setdefault("KTRDR_TORCH_THREADS", "1")
    import ray

    import ktrdr
    from ktrdr.data.sample import write_sample_data
    from ktrdr.runs.ray_backend import start_ray
    from ktrdr.sweep.plan import plan_runs
    from ktrdr.sweep.spec import load_sweep
    from ktrdr.training.train_strategy import StrategyTrainer

    scratch = Path(tempfile.mkdtemp())
    data = scratch / "data"
    write_sample_data(data)
    path = scratch / "sweep.yaml"
    path.write_text(SPEC)
    spec, base = load_sweep(path)
    runs = plan_runs(spec, base)
    figures: dict[str, object] = {"runs": len(runs)}

    started = time.perf_counter()
    for run in runs:
        sets = [f"--set={k}={json.dumps(v)}" for k, v in run.overrides.items()]
        subprocess.run(
            [
                str(Path(sys.executable).parent / "ktrdr"),
                "train",
                str(STRATEGY),
                "--start",
                spec.start,
                "--end",
                spec.end,
                "--timeframes",
                ",".join(run.timeframes),
                "--data-dir",
                str(data),
                "--models-dir",
                str(scratch / "seq"),
                "--json",
                *sets,
            ],
            check=True,
            capture_output=True,
        )
    figures["sequential_ktrdr_train_s"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    for run in runs:
        StrategyTrainer(scratch / "inproc", data).train_multi_symbol_strategy(
            run.strategy,
            list(run.symbols),
            list(run.timeframes),
            spec.start,
            spec.end,
            save=False,
        )
    figures["sequential_one_process_s"] = round(time.perf_counter() - started, 2)

    local = ktrdr.sweep(path, data_dir=data, output_dir=scratch / "out")
    figures["local_backend_s"] = round(local.duration_s, 2)
    figures["local_peak_mib_per_worker"] = [float(m) for m in local.runs["peak_mib"]]

    started = time.perf_counter()
    start_ray("local", num_cpus=2)  # the library's own way: loopback only
    ray.get(ray.remote(lambda: None).remote())
    figures["ray_start_s"] = round(time.perf_counter() - started, 2)
    on_ray = ktrdr.sweep(path, ray_address="auto", data_dir=data, output_dir=scratch / "out")
    figures["ray_backend_s"] = round(on_ray.duration_s, 2)
    figures["ray_peak_mib_per_worker"] = [float(m) for m in on_ray.runs["peak_mib"]]
    ray.shutdown()
    same = (
        local.runs.set_index("run_id")["test_accuracy"]
        == on_ray.runs.set_index("run_id")["test_accuracy"]
    ).all()
    figures["identical_metrics"] = bool(same)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
