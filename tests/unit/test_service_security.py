from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from ktrdr.service_client import bearer_headers
from ktrdr.service_security import ServiceGuard

pytestmark = pytest.mark.unit


def client(token: str | None) -> TestClient:
    app = FastAPI()
    app.add_middleware(ServiceGuard, token=token, max_body=100, large_bodies={"/upload": 1000})

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/echo")
    @app.post("/upload")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    return TestClient(app)


def test_the_token_guards_every_route_but_health() -> None:
    guarded = client("s3cret")
    assert guarded.get("/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        answer = guarded.post("/echo", content=b"x", headers=headers)
        assert answer.status_code == 401 and "service token" in answer.json()["detail"]
    assert guarded.post("/echo", content=b"x", headers=bearer_headers("s3cret")).json() == {
        "bytes": 1
    }
    assert client(None).post("/echo", content=b"x").status_code == 200
    assert bearer_headers(None) == {}


def test_bodies_over_the_cap_are_refused_whether_sized_or_chunked() -> None:
    open_client = client(None)
    assert open_client.post("/echo", content=b"x" * 100).json() == {"bytes": 100}
    assert open_client.post("/echo", content=b"x" * 101).status_code == 413
    assert open_client.post("/upload", content=b"x" * 1000).json() == {"bytes": 1000}
    assert open_client.post("/upload", content=b"x" * 1001).status_code == 413

    def chunks(count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield b"x" * 50

    assert open_client.post("/echo", content=chunks(2)).json() == {"bytes": 100}
    assert open_client.post("/echo", content=chunks(3)).status_code == 413


@pytest.mark.parametrize("kind", ["api", "host"])
def test_the_real_services_guard_every_route_but_health_and_serve_no_cdn_pages(
    kind: str, tmp_path: object, sample_data_dir: object
) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    if kind == "api":
        from ktrdr.api import create_app

        app = create_app(
            models_dir=folder / "models",
            data_dir=sample_data_dir,  # type: ignore[arg-type]
            database=f"sqlite:///{folder / 'ops.db'}",
            token="s3cret",
        )
        routes = [
            ("GET", "/openapi.json"),
            ("GET", "/api/v1/operations"),
            ("DELETE", "/api/v1/operations/abc"),
            ("POST", "/api/v1/trainings/results"),
            ("GET", "/api/v1/strategies"),
        ]
    else:
        from ktrdr.host_service.app import create_app as create_host

        app = create_host(data_dir=sample_data_dir, token="s3cret")  # type: ignore[arg-type]
        routes = [
            ("GET", "/openapi.json"),
            ("POST", "/training/start"),
            ("GET", "/training/status/abc"),
            ("POST", "/training/stop"),
            ("GET", "/training/result/abc"),
        ]
    with TestClient(app) as guarded:
        assert guarded.get("/health").status_code == 200
        for method, path in routes:
            answer = guarded.request(method, path)
            assert answer.status_code == 401, (method, path, answer.status_code)
        assert guarded.get("/openapi.json", headers=bearer_headers("s3cret")).status_code == 200
        for page in ("/docs", "/redoc"):
            assert guarded.get(page, headers=bearer_headers("s3cret")).status_code == 404
