"""The error answer of both services' HTTP APIs, and its declaration in their OpenAPI documents.

Every 4xx/5xx is `{"error": {"code", "message"}}`; declaring each status an operation can answer with this
schema keeps generated clients and API testers in agreement with the services.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="Stable snake_case code; clients match on it.")
    message: str = Field(description="One line a person can act on.")


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


def error_body(code: str, message: str) -> dict:
    """The one error answer both services send, as JSON-ready data."""
    return ErrorBody(error=ErrorDetail(code=code, message=message)).model_dump()


MEANING = {
    400: "Malformed request (headers, body).",
    401: "Missing or unknown bearer token.",
    403: "Role too low.",
    404: "Not found.",
    408: "The request body stalled.",
    409: "Conflicts with the current state.",
    410: "Gone (expired).",
    412: "Precondition failed (protocol version).",
    413: "Too large.",
    415: "Unsupported media type.",
    416: "Range not satisfiable.",
    422: "Invalid input.",
    423: "Locked by another request.",
    460: "Checksum mismatch: the upload's sha256 is not the one its client declared (tus checksum).",
    500: "Internal error.",
    502: "An upstream service failed.",
    503: "Temporarily unavailable (storage, engine, too many requests).",
    507: "Not enough disk space.",
}
COMMON = (400, 401, 403, 404, 408, 409, 413, 422, 500, 503)


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """`responses=` for a FastAPI router or route: each status answered with ErrorBody."""
    return {status: {"model": ErrorBody, "description": MEANING[status]} for status in sorted(set(statuses))}
