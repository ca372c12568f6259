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
