"""The backend API's FastAPI app: /api/v1/trainings, /operations, /strategies.

The OpenAPI description is at /openapi.json.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from starlette.requests import Request

from ktrdr import settings
from ktrdr.api.database import OperationStore, OperationStoreError
from ktrdr.api.rollout_file import ROLLOUT_FILE
from ktrdr.api.schemas import HostResult, StartTrainingRequest, TrainingConfig
from ktrdr.api.strategies import list_strategies
from ktrdr.api.trainings import DEFAULT_MAX_PENDING, RequestError, TrainingService
from ktrdr.database import database_url
from ktrdr.runs import RunPool, metrics
from ktrdr.runs.execution_mode import ExecutionModeSelector
from ktrdr.runs.ledger import RunLedger
from ktrdr.service_security import ServiceGuard
from ktrdr.store.archive import MAX_ARTIFACT_BYTES
from ktrdr.store.model_storage import ModelStorage

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_BODY_BYTES = 1 * 2**20
# The host's callback carries a whole model: base64 of gzip, so up to 4/3 of the artifact.
MAX_RESULT_BYTES = MAX_ARTIFACT_BYTES * 3 // 2


def create_app(
    *,
    public_url: str = "http://127.0.0.1:8000",
    models_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    strategies_dir: str | os.PathLike[str] | None = None,
    database: str | None = None,
    host_url: str | None = None,
    default_mode: str | None = None,
    max_running: int = 2,
    max_pending: int = DEFAULT_MAX_PENDING,
    token: str | None = None,
) -> FastAPI:
    """The backend app; every argument defaults to its environment variable (README, services).

    ``public_url`` is where the host reaches this backend for its result callback.
    """
    token = token if token is not None else settings.service_token()
    data = Path(settings.data_dir(data_dir))
    metrics.install()
    url = database_url(database, data)
    store = OperationStore(url)
    ledger = RunLedger(url) if settings.ledger_enabled() else None
    storage = ModelStorage(models_dir)
    strategies = Path(settings.strategies_dir(strategies_dir))
    service = TrainingService(
        store=store,
        pool=RunPool(max_running),
        storage=storage,
        strategies_dir=strategies,
        data_dir=data,
        selector=ExecutionModeSelector(default_mode, host_url, token=token),
        callback_url=f"{public_url.rstrip('/')}{PREFIX}/trainings/results",
        token=token,
        max_pending=max_pending,
        ledger=ledger,
        rollout_file=data / ROLLOUT_FILE,
    )
    service.resume()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.shutdown()
        store.close()
        if ledger is not None:
            ledger.close()

    app = FastAPI(
        title="ktrdr backend",
        # Swagger UI and ReDoc load their scripts from a CDN: blank pages offline. The
        # description itself is served from here, at /openapi.json.
        docs_url=None,
        redoc_url=None,
        description="Train neuro-fuzzy strategies locally or on a training host; list models.",
        lifespan=lifespan,
    )
    app.add_middleware(
        ServiceGuard,
        token=token,
        max_body=MAX_BODY_BYTES,
        large_bodies={f"{PREFIX}/trainings/results": MAX_RESULT_BYTES},
    )
    app.state.service = service

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(OperationStoreError)
    async def database_error(_request: Request, exc: OperationStoreError) -> JSONResponse:
        # The service is fine; its database is not (locked, damaged, full): retry or repair.
        logger.error("%s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    router = APIRouter(prefix=PREFIX)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """The trainings of this process in the Prometheus text format (the token guards it
        like every route but /health)."""
        content, media_type = metrics.exposition()
        return Response(content=content, media_type=media_type)

    @app.get("/health")
    @router.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "service": "ktrdr-api"}

    @router.post("/trainings/start")
    def start_training(body: StartTrainingRequest) -> dict[str, Any]:
        return service.start(body)

    @router.post("/trainings/results")
    def training_results(body: HostResult) -> dict[str, Any]:
        return service.receive(body)

    @router.get("/trainings/config")
    def get_config() -> dict[str, Any]:
        return service.config()

    @router.put("/trainings/config")
    def put_config(body: TrainingConfig) -> dict[str, Any]:
        return service.configure(body)

    @router.get("/operations")
    def list_operations(
        status: str | None = Query(
            default=None, pattern="^(pending|running|completed|failed|cancelled)$"
        ),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        return {"operations": [_public(op) for op in store.list(status, limit)]}

    @router.get("/operations/{operation_id}")
    def get_operation(operation_id: str) -> dict[str, Any]:
        operation = store.get(operation_id)
        if operation is None:
            raise HTTPException(404, f"no operation {operation_id!r}")
        return _public(operation)

    @router.delete("/operations/{operation_id}")
    def cancel_operation(operation_id: str) -> dict[str, Any]:
        return service.cancel(operation_id)

    @router.get("/strategies")
    def strategies_list() -> dict[str, Any]:
        return {"strategies": list_strategies(strategies, storage)}

    app.include_router(router)
    return app


def _public(operation: dict[str, Any]) -> dict[str, Any]:
    return {
        "operation_id": operation["operation_id"],
        "kind": operation["kind"],
        "status": operation["status"],
        "execution_mode": operation["execution_mode"],
        "strategy": operation["strategy"],
        "request": operation["request"],
        "progress": operation["progress"],
        "result": operation["result"],
        "error": operation["error"],
        "warning": operation["warning"],
        "model_id": operation["model_id"],
        "created_at": operation["created_at"],
        "updated_at": operation["updated_at"],
        "problem": operation.get("problem"),
    }
