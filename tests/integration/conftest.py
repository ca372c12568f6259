"""Fixtures of the integration tier: both services as real uvicorn processes on free loopback
ports, always stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import Service, api_args, running_service


@pytest.fixture
def host(sample_data_dir: Path, tmp_path: Path) -> Iterator[Service]:
    with running_service(
        "host", ["--data-dir", str(sample_data_dir)], tmp_path / "host.log"
    ) as service:
        yield service


@pytest.fixture
def api(host: Service, tmp_path: Path) -> Iterator[Service]:
    with running_service("api", api_args(tmp_path, host.url), tmp_path / "api.log") as service:
        yield service


def installed_ray() -> Any:
    """Ray, or a failure that says how to install it (make install does)."""
    try:
        import ray
    except ImportError:
        pytest.fail("Ray is not installed: pip install -e '.[ray]' (make install does this)")
    return ray


@pytest.fixture
def ray_local() -> Iterator[None]:
    """A local Ray of two CPUs, started the library's way (loopback only), shut down after."""
    ray = installed_ray()
    from ktrdr.runs.ray_backend import start_ray

    start_ray("local", num_cpus=2)
    try:
        yield
    finally:
        ray.shutdown()
