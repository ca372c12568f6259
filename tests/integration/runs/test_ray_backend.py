"""RayBackend on a local Ray bound to 127.0.0.1: a run, a queued one cancelled, a running one
cancelled through its token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ktrdr.runs import RunHandle, run_all
from ktrdr.runs.ray_backend import RayBackend
from ktrdr.store.received import receive_artifact
from tests.training_helpers import short_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def ray_local() -> Iterator[None]:
    try:
        import ray
    except ImportError:
        pytest.fail("Ray is not installed: pip install -e '.[ray]' (make install does this)")
    ray.init(_node_ip_address="127.0.0.1", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


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
