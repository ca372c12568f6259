"""Figures for docs/services.md: host mode against a local run of the same training.

``python scripts/bench/host_mode_figures.py``: starts a training host on a free port (reading
the sample bars), trains the shipped strategy on the 2017 sample year four times in this process
and four times through the host, alternating, and prints one JSON document: every wall time,
the medians after the first run of each, and the size of the model's artifact and payload.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


@contextmanager
def _host(data: Path, log: Path) -> Iterator[str]:
    """``ktrdr serve host`` on a free loopback port until the block ends; its URL."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ktrdr = str(Path(sys.executable).parent / "ktrdr")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [ktrdr, "serve", "host", "--port", str(port), "--data-dir", str(data)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the host did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def main() -> None:
    os.environ.setdefault("KTRDR_TORCH_THREADS", "1")
    from ktrdr import train_strategy
    from ktrdr.data.sample import write_sample_data
    from ktrdr.runs.transfer import encode_artifact
    from ktrdr.store.model_storage import ModelStorage

    strategy = str(ROOT / "strategies" / "neuro_mean_reversion.yaml")
    scratch = Path(tempfile.mkdtemp())
    data = scratch / "data"
    write_sample_data(data)
    args = (["EURUSD"], ["1h"], "2017-01-01", "2017-12-31", strategy)
    local, host = [], []
    with _host(data, scratch / "host.log") as host_url:
        for _ in range(4):
            started = time.perf_counter()
            here = train_strategy(*args, data_dir=data, models_dir=scratch / "local")
            local.append(time.perf_counter() - started)
            started = time.perf_counter()
            there = train_strategy(
                *args, execution_mode="host", host_url=host_url, models_dir=scratch / "host"
            )
            host.append(time.perf_counter() - started)
            assert here["test_metrics"] == there["test_metrics"]
    artifact = ModelStorage(scratch / "host").load(there["model_id"]).to_bytes()
    payload = encode_artifact(artifact)
    print(
        json.dumps(
            {
                "local_s": [round(t, 3) for t in local],
                "host_s": [round(t, 3) for t in host],
                "local_median_after_first_s": round(statistics.median(local[1:]), 3),
                "host_median_after_first_s": round(statistics.median(host[1:]), 3),
                "artifact_bytes": len(artifact),
                "payload_base64_chars": len(payload.data),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
