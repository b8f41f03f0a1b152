"""Talking to importers over HTTP. httpx errors become HostError with a stable code here."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from ferry_contract import ErrorCode, ImportJobRequest

from .errors import Conflict, HostError, InvalidRequest, NotFound
from .models import Host


def _importer_message(response: httpx.Response) -> str:
    """The importer's own words about a refusal, whatever its error shape."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        detail = body.get("detail")
        if detail:
            return str(detail)[:300]
    return str(body)[:300]


class ImporterClient:
    def __init__(self, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None):
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), transport=transport, follow_redirects=False)

    async def close(self) -> None:
        await self.http.aclose()

    async def _request(self, host: Host, method: str, path: str, **kwargs) -> httpx.Response:
        url = host.url.rstrip("/") + path
        try:
            return await self.http.request(method, url, headers={"Authorization": f"Bearer {host.token}"}, **kwargs)
        except httpx.TimeoutException as exc:
            error = HostError(
                f"host {host.name!r} did not answer in time ({exc.__class__.__name__})", code=ErrorCode.HOST_UNREACHABLE
            )
            error.maybe_received = not isinstance(exc, httpx.ConnectTimeout)
            raise error from exc
        except httpx.HTTPError as exc:
            error = HostError(
                f"host {host.name!r} is unreachable: {exc.__class__.__name__}: {exc}", code=ErrorCode.HOST_UNREACHABLE
            )
            error.maybe_received = not isinstance(
                exc, httpx.ConnectError
            )  # a dropped answer: the request may have landed
            raise error from exc

    async def send_job(self, host: Host, request: ImportJobRequest) -> dict:
        """POST /v1/imports. Any refusal is `dispatch_failed` with the importer's message."""
        response = await self._request(host, "POST", "/v1/imports", json=request.model_dump(mode="json"))
        if response.status_code not in (200, 201, 202):
            raise HostError(
                f"host {host.name!r} refused the job (HTTP {response.status_code}): {_importer_message(response)}",
                code=ErrorCode.DISPATCH_FAILED,
            )
        try:
            return response.json()
        except ValueError:
            return {}

    async def cancel(self, host: Host, job_id: str) -> bool:
        """DELETE /v1/imports/{id}: True if the importer took the cancel, False if it never heard of the job."""
        response = await self._request(host, "DELETE", f"/v1/imports/{job_id}")
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise HostError(
                f"host {host.name!r} refused to cancel (HTTP {response.status_code}): {_importer_message(response)}",
                code="cancel_failed",
            )
        return True

    async def images(self, host: Host) -> list[dict]:
        response = await self._request(host, "GET", "/v1/images")
        if response.status_code != 200:
            raise HostError(f"host {host.name!r} answered HTTP {response.status_code} for its images")
        body = response.json()
        return body.get("images", []) if isinstance(body, dict) else list(body)

    async def remove_image(self, host: Host, image_id: str) -> dict:
        """DELETE /v1/images/{id}: the importer removes it through the Engine API, or says why not."""
        response = await self._request(host, "DELETE", f"/v1/images/{quote(image_id, safe='')}")
        if response.status_code == 200:
            body = response.json()
            return body if isinstance(body, dict) else {}
        message = f"host {host.name!r}: {_importer_message(response)}"
        code = _importer_code(response)
        if response.status_code == 404:
            raise NotFound(message, code="image_not_found")
        if response.status_code == 409:
            raise Conflict(message, code=code if code in ("image_has_containers", "remove_failed") else "image_in_use")
        if response.status_code == 422:
            raise InvalidRequest(message, code="invalid_image_id")
        raise HostError(f"{message} (HTTP {response.status_code})", code="remove_failed")


def _importer_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) and isinstance(error.get("code"), str) else None
