"""RayBackend on a local Ray bound to 127.0.0.1: a run, a queued one cancelled, a running one
cancelled through its token."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from ktrdr.runs import RunHandle, run_all
from ktrdr.runs.ray_backend import RayBackend
from ktrdr.store.received import receive_artifact
from tests.training_helpers import short_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_run_comes_back_sealed_and_cancels_go_through_the_token(
    ray_local: None, sample_data_dir: Path
) -> None:
    backend = RayBackend("local", max_running=1)
    in_training = threading.Event()

    def progress(handle: RunHandle, snapshot: dict[str, Any]) -> None:
        if snapshot.get("step_number") == 7:
            in_training.set()

    try:
        [done] = run_all(
            backend, [short_spec(sample_data_dir, save=False, run_id="short")]
        ).values()
        assert done.status == "completed", done
        assert done.artifact is not None and done.result is not None
        model = receive_artifact(done.artifact)
        assert model.manifest["feature_names"] == done.result["feature_names"]
        assert done.peak_rss_bytes and done.peak_rss_bytes > 0

        long = backend.start(
            short_spec(sample_data_dir, epochs=500, save=False, run_id="long"), on_progress=progress
        )
        queued = backend.start(short_spec(sample_data_dir, save=False, run_id="queued"))
        queued.cancel()
        assert queued.wait(5)
        assert queued.outcome().error == "cancelled before it started"  # type: ignore[union-attr]
        assert in_training.wait(180)
        long.cancel(grace_s=60)
        assert long.wait(90)
    finally:
        backend.shutdown(grace_s=0)
    outcome = long.outcome()
    assert outcome is not None and outcome.status == "cancelled", outcome
    assert "cancelled by request during" in (outcome.error or "")


def _listening() -> set[tuple[str, int]]:
    """Every TCP socket listening on this machine, as (address, port), read from /proc."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] != "0A":  # LISTEN
                    continue
                address, port = fields[1].rsplit(":", 1)
                found.add((address, int(port, 16)))
    return found


def _is_loopback(address: str) -> bool:
    if len(address) == 8:  # IPv4, little-endian hex: 0100007F is 127.0.0.1
        return address.endswith("7F")
    # IPv6: ::1, or ::ffff:127.x.x.x (IPv4-mapped)
    return address == "00000000000000000000000001000000" or (
        address.startswith("0000000000000000FFFF0000") and address.endswith("7F")
    )


def test_a_local_ray_listens_on_loopback_only() -> None:
    import ray

    from ktrdr.runs.ray_backend import start_ray

    before = _listening()
    assert start_ray("local", num_cpus=1)
    try:
        assert ray.get(ray.remote(lambda: 1).remote()) == 1  # a worker is up and serving
        opened = _listening() - before
    finally:
        ray.shutdown()
    assert opened, "Ray opened no listening socket at all?"
    exposed = sorted(a for a in opened if not _is_loopback(a[0]))
    assert exposed == [], f"Ray listens beyond loopback: {exposed}"
