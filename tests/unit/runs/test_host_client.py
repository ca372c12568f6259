"""The host client: imports without the server, and says in plain words when the host is away."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ktrdr.runs.host_client import HostClient, HostServiceError
from tests.services import free_port

pytestmark = pytest.mark.unit


def test_importing_the_client_loads_no_server_code() -> None:
    code = (
        "import sys, ktrdr.runs.host_client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', "
        "'uvicorn') or m.startswith('ktrdr.host_service')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_a_host_that_does_not_answer_is_an_error_saying_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with HostClient(url, "token", timeout=2) as client:
        assert client.health() is None
        with pytest.raises(HostServiceError, match="ktrdr serve host") as raised:
            client.status("abc")
    assert raised.value.status_code is None and url in str(raised.value)
