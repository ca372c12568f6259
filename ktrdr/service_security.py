"""What both services check on every request: the shared token and the body size.

What their clients send and read back is ``ktrdr/service_client.py`` (no server imports)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

OPEN_PATHS = frozenset({"/health", "/api/v1/health"})


class ServiceGuard(BaseHTTPMiddleware):
    """Refuse requests without the bearer ``token`` (when one is set) and bodies over
    ``max_body`` bytes (``large_bodies`` raises the cap for the paths it names). ``/health``
    stays open so that liveness checks need no secret."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        max_body: int,
        large_bodies: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(app)
        self.token = token
        self.max_body = max_body
        self.large_bodies = dict(large_bodies or {})

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if self.token is not None and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            expected = self.token.encode()
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), expected):
                return JSONResponse(
                    {"detail": "missing or wrong service token (Authorization: Bearer ...)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        limit = self.large_bodies.get(request.url.path, self.max_body)
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return JSONResponse({"detail": "invalid Content-Length"}, status_code=400)
            if int(length) > limit:
                return _too_large(limit)
        elif request.method in ("POST", "PUT", "PATCH"):
            # A chunked body is read here, once, with the cap applied while reading.
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    return _too_large(limit)
            request._body = bytes(body)
        return await call_next(request)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over the {limit:,}-byte limit"}, status_code=413)
