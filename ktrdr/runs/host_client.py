"""``HostClient``: what the backend and the library call on the training host (httpx, sync)."""

from __future__ import annotations

from typing import Any

import httpx

from ktrdr.errors import ExecutionModeError
from ktrdr.service_client import bearer_headers, error_detail


class HostServiceError(ExecutionModeError):
    """The host answered with an error, or could not be reached. ``status_code`` is the HTTP
    status (None when unreachable)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class HostClient:
    """The host service at ``base_url`` (for example ``http://127.0.0.1:5002``)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url, headers=bearer_headers(token), timeout=timeout
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HostClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The host's /health answer, or None when it does not answer in time."""
        try:
            response = self._client.get("/health", timeout=timeout or self._client.timeout)
        except httpx.HTTPError:
            return None
        return dict(response.json()) if response.is_success else None

    def start(
        self,
        *,
        strategy_yaml: str,
        symbols: list[str],
        timeframes: list[str],
        start_date: str,
        end_date: str,
        overrides: dict[str, Any] | None = None,
        session_id: str | None = None,
        callback_url: str | None = None,
        threads: int | None = None,
        execution_path: str | None = None,
    ) -> dict[str, Any]:
        """Start (or, with a known ``session_id``, find) a session: ``{session_id, status}``."""
        body: dict[str, Any] = {
            "strategy_yaml": strategy_yaml,
            "symbols": list(symbols),
            "timeframes": list(timeframes),
            "start_date": start_date,
            "end_date": end_date,
            "overrides": dict(overrides or {}),
        }
        for key, value in (
            ("session_id", session_id),
            ("callback_url", callback_url),
            ("threads", threads),
            ("execution_path", execution_path),
        ):
            if value is not None:
                body[key] = value
        return self._call("POST", "/training/start", json=body)

    def status(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/training/status/{session_id}")

    def stop(self, session_id: str) -> dict[str, Any]:
        return self._call("POST", "/training/stop", json={"session_id": session_id})

    def result(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/training/result/{session_id}")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HostServiceError(
                f"the training host service at {self.base_url} did not answer ({exc}); start it "
                "with 'ktrdr serve host' or check TRAINING_HOST_SERVICE_URL"
            ) from exc
        if not response.is_success:
            detail = error_detail(response)
            raise HostServiceError(
                f"training host {method} {path}: HTTP {response.status_code}: {detail}",
                response.status_code,
            )
        return dict(response.json())
