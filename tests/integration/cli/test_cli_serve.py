"""``ktrdr serve``: beyond loopback it needs a token, or --insecure said out loud."""

from __future__ import annotations

from typing import Any

import pytest

from ktrdr.cli import serve
from ktrdr.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []

    def record(application: Any, host: str, port: int, log_level: str) -> None:
        calls.append((host, port))

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
        return ["--data-dir", str(tmp_path / "data")]
    return [
        "--data-dir",
        str(tmp_path / "data"),
        "--models-dir",
        str(tmp_path / "models"),
        "--database-url",
        f"sqlite:///{tmp_path / 'ops.db'}",
    ]
