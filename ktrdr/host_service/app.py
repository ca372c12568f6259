"""The host service's FastAPI app (routes: /health and /training/...)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Response

from ktrdr import settings
from ktrdr.async_infrastructure.status import TERMINAL
from ktrdr.config.loader import parse_strategy_text
from ktrdr.data.store import missing_series
from ktrdr.errors import KtrdrError
from ktrdr.host_service.schemas import StartTraining, StopTraining
from ktrdr.host_service.sessions import Session, SessionRegistry, SessionsFull
from ktrdr.runs import RunPool, metrics
from ktrdr.service_security import ServiceGuard
from ktrdr.training.run_spec import RunSpec, build_run_spec

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 * 2**20
DEFAULT_RESULT_TTL_S = 3600.0
STOP_GRACE_S = 10.0


def create_app(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    max_running: int = 1,
    max_pending: int = 4,
    result_ttl_s: float = DEFAULT_RESULT_TTL_S,
    token: str | None = None,
    device: str | None = None,
) -> FastAPI:
    """The host app. ``token`` defaults to ``KTRDR_SERVICE_TOKEN``, ``data_dir`` to
    ``KTRDR_DATA_DIR``; at most ``max_running`` trainings run at once and ``max_pending`` wait."""
    token = token if token is not None else settings.service_token()
    bars = Path(settings.data_dir(data_dir))
    metrics.install()
    registry = SessionRegistry(RunPool(max_running), max_pending, result_ttl_s, token)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        registry.shutdown()

    app = FastAPI(
        title="ktrdr training host",
        # Swagger UI and ReDoc load their scripts from a CDN: blank pages offline. The
        # description itself is served from here, at /openapi.json.
        docs_url=None,
        redoc_url=None,
        description="Runs ktrdr trainings where the hardware is; never writes a model store.",
        lifespan=lifespan,
    )
    app.add_middleware(ServiceGuard, token=token, max_body=MAX_BODY_BYTES)
    app.state.registry = registry
    gpu = _gpu_available()

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "service": "ktrdr-host", "gpu": gpu, **registry.counts()}

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """The trainings of this process in the Prometheus text format (the token guards it
        like every route but /health)."""
        content, media_type = metrics.exposition()
        return Response(content=content, media_type=media_type)

    @app.post("/training/start")
    def start(body: StartTraining) -> dict[str, Any]:
        session_id = body.session_id or uuid.uuid4().hex
        existing = registry.get(session_id)
        if existing is not None:
            return _brief(existing)
        request = _run_spec(body, session_id, bars, device)
        try:
            session, _ = registry.start(request, str(body.callback_url or "") or None)
        except SessionsFull:
            raise HTTPException(
                503, "the host is busy: every training slot and queue place is taken; retry later"
            ) from None
        return _brief(session)

    @app.get("/training/status/{session_id}")
    def status(session_id: str) -> dict[str, Any]:
        session = _session(registry, session_id)
        assert session.handle is not None
        snapshot = session.handle.snapshot()
        outcome = session.handle.outcome()
        context = (snapshot or {}).get("context") or {}
        return {
            **_brief(session),
            "progress": snapshot,
            "metrics": context.get("metrics") or {},
            "error": None if outcome is None else outcome.error,
            "result_ready": session.payload is not None,
            "callback_delivered": session.callback_delivered,
        }

    @app.post("/training/stop")
    def stop(body: StopTraining) -> dict[str, Any]:
        session = _session(registry, body.session_id)
        assert session.handle is not None
        if session.handle.status() in TERMINAL:
            raise HTTPException(409, f"session {body.session_id} has already ended")
        registry.stop(session, STOP_GRACE_S)
        return {"session_id": body.session_id, "status": "stopping"}

    @app.get("/training/result/{session_id}")
    def result(session_id: str) -> dict[str, Any]:
        session = _session(registry, session_id)
        if session.payload is None:
            raise HTTPException(409, f"session {session_id} has not ended yet")
        registry.mark_fetched(session)
        return session.payload

    return app


def _brief(session: Session) -> dict[str, Any]:
    assert session.handle is not None
    return {"session_id": session.session_id, "status": session.handle.status()}


def _session(registry: SessionRegistry, session_id: str) -> Session:
    session = registry.get(session_id)
    if session is None:
        raise HTTPException(404, f"no session {session_id!r} (unknown, or its result expired)")
    return session


def _run_spec(body: StartTraining, session_id: str, bars: Path, device: str | None) -> RunSpec:
    """Check everything a run needs before a worker starts; 422 naming what is wrong."""
    try:
        spec = build_run_spec(
            parse_strategy_text(body.strategy_yaml, "strategy_yaml"),
            body.symbols,
            body.timeframes,
            body.start_date,
            body.end_date,
            overrides=body.overrides,
            # The host never writes a store: the artifact goes back to whoever asked.
            save=False,
            threads=body.threads,
            device=device,
            data_dir=bars,
            run_id=session_id,
            execution_path=body.execution_path,
        )
    except KtrdrError as exc:
        raise HTTPException(422, str(exc)) from exc
    missing = missing_series(spec.symbols, spec.timeframes, bars)
    if missing:
        raise HTTPException(
            422, f"the host has no bars for {', '.join(missing)}; import them on the host first"
        )
    return spec


def _gpu_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())
