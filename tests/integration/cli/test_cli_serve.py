"""``ktrdr serve``: beyond loopback it needs a token, or --insecure said out loud."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from ktrdr.cli import serve
from ktrdr.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []

    def record(application: Any, listener: socket.socket, log_level: str) -> None:
        calls.append(listener.getsockname()[:2])

    monkeypatch.setattr(serve, "_serve", record)
    monkeypatch.delenv("KTRDR_SERVICE_TOKEN", raising=False)
    return calls


@pytest.mark.parametrize("kind", ["api", "host"])
@pytest.mark.parametrize("address", ["0.0.0.0", "::", "127.0.0.2", "192.168.1.10"])
def test_beyond_loopback_without_a_token_is_refused(
    served: list[tuple[str, int]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
    kind: str,
    address: str,
) -> None:
    code = main(["serve", kind, "--host", address, *_folders(kind, tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and served == []
    assert f"refusing to serve on {address} without a token" in " ".join(err.split())
    assert "KTRDR_SERVICE_TOKEN" in err and "--insecure" in err


@pytest.mark.parametrize("kind", ["api", "host"])
def test_loopback_a_token_or_insecure_serve(
    served: list[tuple[str, int]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    kind: str,
) -> None:
    folders = _folders(kind, tmp_path)
    assert main(["serve", kind, *folders]) in (0, None)
    assert served[-1][0] == "127.0.0.1"  # the default binds loopback only
    assert main(["serve", kind, "--host", "0.0.0.0", "--insecure", *folders]) in (0, None)
    assert "without KTRDR_SERVICE_TOKEN" in " ".join(capsys.readouterr().err.split())
    monkeypatch.setenv("KTRDR_SERVICE_TOKEN", "s3cret")
    assert main(["serve", kind, "--host", "0.0.0.0", *folders]) in (0, None)
    assert [host for host, _ in served] == ["127.0.0.1", "0.0.0.0", "0.0.0.0"]


def _folders(kind: str, tmp_path: Any) -> list[str]:
    if kind == "host":
        return ["--port", "0", "--data-dir", str(tmp_path / "data")]
    return [
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        "--models-dir",
        str(tmp_path / "models"),
        "--database-url",
        f"sqlite:///{tmp_path / 'ops.db'}",
    ]


@pytest.mark.parametrize("kind", ["api", "host"])
def test_port_0_serves_a_free_port_and_names_it(
    served: list[tuple[str, int]], capsys: pytest.CaptureFixture[str], tmp_path: Any, kind: str
) -> None:
    assert main(["serve", kind, *_folders(kind, tmp_path)]) in (0, None)
    [(host, port)] = served
    assert host == "127.0.0.1" and port > 0
    named = re.search(r"on http://127\.0\.0\.1:(\d+)", capsys.readouterr().err)
    assert named is not None and int(named.group(1)) == port


@pytest.mark.parametrize("kind", ["api", "host"])
def test_a_port_in_use_is_a_clear_refusal(
    served: list[tuple[str, int]], capsys: pytest.CaptureFixture[str], tmp_path: Any, kind: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        args = [*_folders(kind, tmp_path), "--port", str(port)]
        assert main(["serve", kind, *args]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
    assert served == []


def test_a_damaged_database_stops_the_api_before_it_serves_naming_the_file(
    served: list[tuple[str, int]], capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    (tmp_path / "ops.db").write_bytes(b"not a database at all" * 200)
    port = _free_port()
    args = [*_folders("api", tmp_path), "--port", str(port)]
    assert main(["serve", "api", *args]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"the operations database {tmp_path / 'ops.db'}" in err
    assert "not a usable SQLite database" in err and "unexpected error" not in err
    assert served == []
    socket.create_server(("127.0.0.1", port)).close()  # the port was let go


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])
