"""The backend's own error tree: every failure a client sees has a stable code and one-line message.

Foreign errors (httpx, SQLAlchemy, OS) are translated into these at the boundary that meets them.
"""

from __future__ import annotations

from ferry_contract.api_errors import error_body


class FerryError(Exception):
    """Base class. `status` is the HTTP status the API answers with."""

    status = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, headers: dict | None = None
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def to_body(self) -> dict:
        return error_body(self.code, self.message)


class InvalidRequest(FerryError):
    status = 422
    code = "invalid_request"


class Unauthorized(FerryError):
    status = 401
    code = "unauthorized"


class Forbidden(FerryError):
    status = 403
    code = "forbidden"


class NotFound(FerryError):
    status = 404
    code = "not_found"


class Conflict(FerryError):
    status = 409
    code = "conflict"


class Gone(FerryError):
    status = 410
    code = "gone"


class TooLarge(FerryError):
    status = 413
    code = "upload_too_large"


class InsufficientStorage(FerryError):
    status = 507
    code = "insufficient_disk"


class HostError(FerryError):
    """An importer could not be reached or refused a request."""

    status = 502
    code = "host_unreachable"
    maybe_received = False  # the request may have reached the importer (no answer came): a failure is only presumed


class StoreUnavailable(FerryError):
    status = 503
    code = "store_unavailable"
