"""Start the backend API and the training host as real uvicorn processes for a test, and drive
their trainings (start, wait, read) the way a client does."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import STRATEGIES_DIR
from tests.processes import default_signal_handlers

KTRDR = str(Path(sys.executable).parent / "ktrdr")
Q1 = {"start_date": "2017-01-01", "end_date": "2017-03-31"}
# Long enough to be stopped mid-training: no early stop, hundreds of epochs over the year.
LONG = {
    "start_date": "2017-01-01",
    "end_date": "2017-12-31",
    "overrides": {"training.epochs": 2000, "training.early_stopping.patience": 2000},
}


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=30, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.put(f"{self.url}{path}", timeout=30, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.delete(f"{self.url}{path}", timeout=30, **kwargs)

    def workers(self) -> list[int]:
        """Process ids of the service's worker processes (its children running trainings)."""
        found = subprocess.run(
            ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [int(line.split()[0]) for line in found.splitlines() if "spawn_main" in line]

    def training_worker(self, operation_id: str, timeout: float = 60) -> int:
        """The worker process that trains ``operation_id``, as its progress names it."""

        def named() -> int | None:
            progress = self.get(f"/api/v1/operations/{operation_id}").json()["progress"] or {}
            return progress.get("worker_pid")

        pid = int(wait_for(named, timeout, what=f"the worker of {operation_id}"))
        assert pid in self.workers(), (pid, self.workers())
        return pid


def free_port() -> int:
    """A port nothing listens on now: for a URL that must answer nothing. A service under test
    is never started on one (another process could take it first); it binds port 0 instead."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(
    kind: str,
    args: list[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 60.0,
) -> Iterator[Service]:
    """``ktrdr serve KIND --port 0 ARGS`` until the block ends; always stopped, even on failure.

    The service binds a free port itself and names it in its start line, which is read from
    ``log``: no port is chosen here and then lost to another process before the service binds.
    """
    environment = {**os.environ, "KTRDR_TORCH_THREADS": "1", **(env or {})}
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as output:
        process = subprocess.Popen(
            [KTRDR, "serve", kind, "--port", "0", "--log-level", "warning", *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            preexec_fn=default_signal_handlers,
        )
    service = Service("", process, log)
    try:
        service.url = _wait_ready(service, offset, ready_timeout)
        yield service
    finally:
        stop(service)


def stop(service: Service, timeout: float = 20.0) -> None:
    if service.process.poll() is None:
        service.process.terminate()
        try:
            service.process.wait(timeout)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()


_START_LINE = re.compile(rb"on http://(127\.0\.0\.1:\d+)")


def _wait_ready(service: Service, offset: int, timeout: float) -> str:
    """The service's URL, once its start line names the port and /health answers."""
    deadline = time.monotonic() + timeout
    url = ""
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"service exited early:\n{service.log.read_text()[-3000:]}")
        if not url:
            with service.log.open("rb") as log:
                log.seek(offset)
                named = _START_LINE.search(log.read())
            url = f"http://{named.group(1).decode()}" if named else ""
        if url:
            try:
                if httpx.get(f"{url}/health", timeout=2).is_success:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"service not ready in {timeout} s:\n{service.log.read_text()[-3000:]}")


def wait_for(check: Any, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Poll ``check()`` until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")


def api_args(tmp_path: Path, host_url: str, *extra: str) -> list[str]:
    return [
        "--models-dir",
        str(tmp_path / "models"),
        "--data-dir",
        str(tmp_path / "api-data"),
        "--strategies-dir",
        str(STRATEGIES_DIR),
        "--host-url",
        host_url,
        *extra,
    ]


def start_training(api: Service, **body: Any) -> str:
    request = {
        "strategy_name": "neuro_mean_reversion",
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        **Q1,
        "overrides": {"training.epochs": 3},
        **body,
    }
    response = api.post("/api/v1/trainings/start", json=request)
    assert response.status_code == 200, response.text
    return str(response.json()["operation_id"])


def operation(api: Service, operation_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/operations/{operation_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_until_ended(api: Service, operation_id: str, timeout: float = 120) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        op = operation(api, operation_id)
        return op if op["status"] in ("completed", "failed", "cancelled") else None

    return dict(wait_for(ended, timeout, what=f"operation {operation_id} ending"))


def wait_until_training(api: Service, operation_id: str, timeout: float = 60) -> None:
    def training() -> bool:
        progress = operation(api, operation_id).get("progress") or {}
        return progress.get("step_number") == 7 and bool(progress.get("context", {}).get("epoch"))

    wait_for(training, timeout, what=f"operation {operation_id} in step 7")
    time.sleep(0.5)
