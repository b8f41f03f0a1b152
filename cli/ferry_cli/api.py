"""The backend's HTTP API as the CLI uses it (see backend/API.md); httpx errors become CLI errors here."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from . import errors

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 30.0


def normalize_url(url: str, what: str = "backend URL") -> str:
    """`http(s)://host[:port][/prefix]` without a trailing slash; anything else is a usage error."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.BadInput(f"{what} must be http:// or https://, got {url!r}", code="invalid_url")
    return url.rstrip("/")


def error_of(response: httpx.Response) -> tuple[str | None, str]:
    """The backend's stable `{"error": {code, message}}`, or a description of whatever else came back."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return error.get("code"), str(error.get("message") or response.reason_phrase)
    return None, f"HTTP {response.status_code} {response.reason_phrase} from {response.request.url}"


def transport_error(exc: httpx.TransportError, url: str) -> errors.CliError:
    if isinstance(exc, httpx.TimeoutException):
        return errors.Unreachable(f"no answer from {url} within {TIMEOUT_S:.0f} s")
    reason = str(exc) or type(exc).__name__
    return errors.Unreachable(f"cannot reach {url}: {reason}")


class Backend:
    """A thin, synchronous client: one method per endpoint, JSON in and out."""

    def __init__(self, url: str, token: str | None, *, timeout: float = TIMEOUT_S):
        self.url = normalize_url(url)
        if not token:
            raise errors.Unauthorized("no token: set FERRY_TOKEN or pass --token", code="missing_token")
        self.token = token
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.url) from None
        if response.status_code >= 400:
            code, message = error_of(response)
            raise errors.for_status(response.status_code, code, message)
        try:
            return response.json()
        except ValueError:
            raise errors.Refused(
                f"{self.url}{path} answered with something that is not JSON; is this a ferry backend?",
                code="not_a_ferry_backend",
            ) from None

    # --- endpoints -------------------------------------------------------------------------------

    def me(self) -> dict:
        return self.request("GET", "/api/me")

    def jobs(self, state: str | None = None, host: str | None = None, limit: int | None = None) -> list[dict]:
        params = {k: v for k, v in {"state": state, "host": host, "limit": limit}.items() if v is not None}
        return self.request("GET", "/api/imports", params=params)["jobs"]

    def job(self, job_id: str) -> dict:
        return self.request("GET", f"/api/imports/{quote(job_id, safe='')}")

    def events(self, job_id: str, after_seq: int = 0) -> list[dict]:
        return self.request("GET", f"/api/imports/{quote(job_id, safe='')}/events", params={"after_seq": after_seq})

    def deliveries(self, job_id: str) -> list[dict]:
        """Every verified callback that arrived for the job, in arrival order, raw (operator role)."""
        return self.request("GET", f"/api/imports/{quote(job_id, safe='')}/deliveries")

    def cancel(self, job_id: str) -> dict:
        """Ask for the job's cancel (operator role); the answer is the job as it is now."""
        return self.request("DELETE", f"/api/imports/{quote(job_id, safe='')}")

    def hosts(self) -> list[dict]:
        return self.request("GET", "/api/hosts")

    def images(self) -> list[dict]:
        return self.request("GET", "/api/images")

    def create_imports(
        self, *, upload_id: str, hosts: list[str], image: str | None, format: str, changes: list[str], force: bool
    ) -> list[dict]:
        body = {
            "upload_id": upload_id,
            "hosts": hosts,
            "image": image,
            "format": format,
            "changes": changes,
            "force": force,
        }
        return self.request("POST", "/api/imports", json=body)["jobs"]
