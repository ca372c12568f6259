"""Fixtures of the integration tier: both services as real uvicorn processes on free loopback
ports, always stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
