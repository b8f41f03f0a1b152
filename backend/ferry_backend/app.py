"""The ASGI application: FastAPI routes wrapped by python-socketio, the web page at /."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

import socketio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ferry_contract.api_errors import error_body
from ferry_contract.bodies import BodyDeadline

from . import __version__
from .api.routes import callbacks, content, hosts, imports, misc, tokens, uploads
from .errors import FerryError
from .import_jobs import redispatch_unconfirmed
from .liveness import run_sweeper
from .services import Services
from .settings import Settings
from .tus import TUS_VERSION

log = logging.getLogger("ferry")
STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


# The page loads only its own files (its icon is a data: URL) and is never framed; no response is content-sniffed.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI: the security headers on every answer of the API and the page, from the backend itself (not only nginx)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_secured)


def _error(
    request: Request, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if request.url.path.startswith("/api/uploads"):
        headers.setdefault("Tus-Resumable", TUS_VERSION)
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FerryError)
    async def _ferry(request: Request, exc: FerryError):
        if exc.status >= 500:
            log.error("%s %s: %s (%s)", request.method, request.url.path, exc.message, exc.code)
        return _error(request, exc.status, str(exc.code), exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "body"
        code = {"image": "invalid_reference", "changes": "invalid_change"}.get(loc[0] if loc else "", "invalid_request")
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        return _error(request, 422, code, f"{field}: {message}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return _error(
            request, exc.status_code, STATUS_CODES.get(exc.status_code, "http_error"), str(exc.detail), exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(request, 500, "internal_error", "internal error; see the backend log")


def create_fastapi(services: Services) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Start-up order: the store and the hub, then what needs them (jobs never confirmed, the sweeper).
        await services.start()
        await redispatch_unconfirmed(services)
        services.spawn(run_sweeper(services), name="sweeper")
        try:
            yield
        finally:
            await services.stop()

    # The OpenAPI document only to token holders (misc.openapi); no interactive docs pages (they load
    # their scripts from a CDN that lab networks rarely reach).
    app = FastAPI(
        title="ferry backend", version=__version__, lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.services = services
    _install_error_handlers(app)
    for module in (imports, uploads, content, misc, hosts, tokens):
        app.include_router(module.router)
    web_dir = services.settings.resolved_web_dir
    if web_dir is not None and web_dir.is_dir():
        app.mount("/", StaticFiles(directory=web_dir, html=True), name="web")
    app.add_middleware(SecurityHeaders)
    return app


def create_app(settings: Settings | None = None) -> BodyDeadline:
    """Socket.IO at /socket.io, callbacks to their own handler, everything else to FastAPI (whose lifespan starts the
    services); in front of all, the deadline on request bodies."""
    services = Services(settings or Settings())
    app = create_fastapi(services)
    asgi = socketio.ASGIApp(services.sio, other_asgi_app=callbacks.CallbackEndpoint(app, services))
    asgi.services = services  # for embedding and tests
    settings = services.settings
    guarded = BodyDeadline(asgi, settings.body_idle_s, settings.max_open_bodies, exempt=("/api/uploads/",))
    guarded.services = services
    return guarded
