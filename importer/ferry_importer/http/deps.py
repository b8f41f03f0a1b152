"""What every route of the importer's HTTP API depends on: the running importer's parts, the bearer check and the
error shape. Routes and the app factory both import it; it imports neither."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ferry_importer.callbacks.delivery import DeliveryWorker
from ferry_importer.callbacks.heartbeat import HostStatus
from ferry_importer.database import Database
from ferry_importer.engine.client import Engine
from ferry_importer.service import JobManager
from ferry_importer.settings import ImporterSettings


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


@dataclass
class Runtime:
    """The parts of a running importer that routes use (built by the app's lifespan)."""

    settings: ImporterSettings
    db: Database
    engine: Engine
    manager: JobManager
    worker: DeliveryWorker
    status: HostStatus


_bearer = HTTPBearer(auto_error=False, description="The importer's FERRY_IMPORTER_TOKEN.")


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    expected = request.app.state.settings.token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if not secrets.compare_digest(given, expected):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
