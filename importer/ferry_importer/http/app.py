"""The importer's HTTP API: FastAPI app factory, lifespan wiring, bearer auth and the error shape.

Every route but `GET /healthz` needs `Authorization: Bearer <TOKEN>`, the OpenAPI document included
(`GET /v1/openapi.json`). Errors always look like `{"error": {"code": "snake_case", "message": "…"}}`.
The routes themselves live in routes.py, and what they depend on (the runtime, auth, error shape) in deps.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ferry_contract import ErrorCode
from ferry_contract.api_errors import error_body
from ferry_importer import job_store
from ferry_importer.callbacks import outbox
from ferry_importer.callbacks.delivery import DeliveryWorker
from ferry_importer.callbacks.heartbeat import HeartbeatSender, HostStatus
from ferry_importer.callbacks.retry import RetryPolicy
from ferry_importer.callbacks.signing import Signer
from ferry_importer.database import Database
from ferry_importer.engine.client import Engine
from ferry_importer.errors import ImporterError
from ferry_importer.http.deps import ApiError, Runtime, require_token
from ferry_importer.http.routes import monitoring, public, router
from ferry_importer.job_reporter import EventRecorder
from ferry_importer.service import JobConflict, JobManager
from ferry_importer.settings import ImporterSettings

log = logging.getLogger("ferry_importer.http.app")

SHUTDOWN_FLUSH_S = 3.0
RETENTION_EVERY_S = 3600.0

HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}

STATUS_FOR_CODE = {
    ErrorCode.SOURCE_NOT_ALLOWED: 403,
    ErrorCode.SOURCE_NOT_FOUND: 422,
    ErrorCode.SOURCE_UNAVAILABLE: 422,
    ErrorCode.SOURCE_MISMATCH: 422,
    ErrorCode.INVALID_REFERENCE: 422,
    ErrorCode.INVALID_CHANGE: 422,
    ErrorCode.ENGINE_UNREACHABLE: 503,
    ErrorCode.ENGINE_ERROR: 502,
}


def create_app(settings: ImporterSettings) -> FastAPI:

    app = FastAPI(
        title="ferry importer",
        summary="Streams image archives into this host's Docker engine and reports progress as signed callbacks.",
        version="1",
        lifespan=_lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.include_router(public)
    app.include_router(router, dependencies=[Depends(require_token)])
    app.include_router(monitoring, dependencies=[Depends(require_token)])

    @app.get("/v1/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(ImporterError)
    async def _importer_error(_request: Request, exc: ImporterError) -> JSONResponse:
        code = ErrorCode(exc.code)
        return JSONResponse(error_body(code.value, exc.message), status_code=STATUS_FOR_CODE.get(code, 500))

    @app.exception_handler(JobConflict)
    async def _conflict(_request: Request, exc: JobConflict) -> JSONResponse:
        return JSONResponse(error_body("job_conflict", str(exc)), status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        code = ErrorCode.INVALID_REFERENCE.value if where == "image" else "invalid_request"
        return JSONResponse(error_body(code, f"{where}: {message}" if where else message), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """What the framework itself refuses (an unreadable body, an unknown path) has the same error shape."""
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    settings: ImporterSettings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)  # job requests may carry source URLs with download tokens
    settings.spool_dir.mkdir(exist_ok=True)
    db = Database(settings.database_path)
    await db.open()
    signer = Signer(settings.webhook_secret.get_secret_value())
    policy = RetryPolicy(base_s=settings.retry_base_s, max_s=settings.retry_max_s, expire_s=settings.outbox_expire_s)
    worker = DeliveryWorker(db, signer, policy, timeout_s=settings.delivery_timeout_s)
    engine = Engine(settings.engine_host)
    manager = JobManager(settings, db, EventRecorder(db, worker.wake), engine)
    status = HostStatus(engine, settings.spool_dir)
    heartbeat = HeartbeatSender(
        host=settings.name,
        interval_s=settings.heartbeat_s,
        url=settings.heartbeat_url,
        signer=signer,
        db=db,
        status=status,
        jobs_now=lambda: (manager.running_ids, manager.queued_ids),
        timeout_s=settings.delivery_timeout_s,
        on_accepted=worker.receiver_answered,
    )
    app.state.runtime = Runtime(settings, db, engine, manager, worker, status)
    if not settings.callback_url_prefixes:
        log.warning("FERRY_IMPORTER_CALLBACK_URL_PREFIXES is empty: callbacks may go to any http(s) URL")
    background = [
        asyncio.create_task(worker.run(), name="outbox-delivery"),
        asyncio.create_task(heartbeat.run(), name="heartbeat"),
        asyncio.create_task(_retention(db, settings.outbox_keep_s), name="retention"),
    ]
    await manager.recover()
    log.info("importer %s ready: data in %s, engine %s", settings.name, settings.data_dir, settings.engine_host)
    try:
        yield
    finally:
        await manager.shutdown()
        await _flush(db, SHUTDOWN_FLUSH_S)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await engine.aclose()
        await db.close()


async def _flush(db: Database, grace_s: float) -> None:
    """Give the delivery worker a moment to send the last events before the process ends (they stay queued)."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        heads = await db.call(outbox.heads)
        if not any(h.next_attempt_at <= time.time() for h in heads):
            return
        await asyncio.sleep(0.05)


async def _retention(db: Database, keep_s: float) -> None:
    while True:
        before = time.time() - keep_s
        try:
            purged = await db.call(outbox.purge, before) + await db.call(job_store.purge, before)
            if purged:
                log.info("retention: forgot %d finished jobs and callbacks", purged)
        except Exception:
            log.exception("retention failed")
        await asyncio.sleep(RETENTION_EVERY_S)
