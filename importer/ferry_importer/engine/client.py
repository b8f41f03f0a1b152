"""The Docker Engine API over httpx (unix socket or tcp), never the docker CLI.

Long requests (load/import) stream the body in the caller's chunks and have no read timeout; every
JSON line of the answer is parsed, and an `errorDetail` inside a 200 stream is a failure. httpx errors
are translated into the importer's error tree here and nowhere else.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from ferry_importer.errors import EngineError, EngineUnreachable, ImporterError, InsufficientDisk

DEFAULT_HOST = "unix:///var/run/docker.sock"
JsonMessage = dict[str, Any]


def docker_host_from_env() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _transport(host: str) -> tuple[httpx.AsyncBaseTransport, str]:
    if host.startswith("unix://"):
        return httpx.AsyncHTTPTransport(uds=host[len("unix://") :]), "http://docker"
    if host.startswith("tcp://"):
        address = host[len("tcp://") :].rstrip("/")
        if os.environ.get("DOCKER_TLS_VERIFY"):
            certs = Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
            context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
            context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
            return httpx.AsyncHTTPTransport(verify=context), f"https://{address}"
        return httpx.AsyncHTTPTransport(), f"http://{address}"
    raise EngineUnreachable(f"DOCKER_HOST {host!r} is not supported: use unix:///path or tcp://host:port")


class Engine:
    """A small async client for the endpoints the importer needs."""

    def __init__(
        self,
        host: str | None = None,
        *,
        connect_timeout: float = 5.0,
        request_timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.host = host or docker_host_from_env()
        base_url = "http://docker"
        if transport is None:
            transport, base_url = _transport(self.host)
        self._client = httpx.AsyncClient(
            transport=transport,
            base_url=base_url,
            timeout=httpx.Timeout(request_timeout, connect=connect_timeout),
        )
        self._version: JsonMessage | None = None

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def version(self) -> JsonMessage:
        if self._version is None:
            self._version = await self._json("GET", "/version")
        return self._version

    async def info(self) -> JsonMessage:
        return await self._json("GET", "/info")

    async def inspect_image(self, ref: str) -> JsonMessage | None:
        """The image's inspect document, or None when the engine has no such image."""
        return await self._json("GET", f"/images/{ref}/json", missing_ok=True)

    async def list_images(self, filters: dict[str, list[str]]) -> list[JsonMessage]:
        params = {"all": "1", "filters": json.dumps(filters)}
        return await self._json("GET", "/images/json", params=params)

    async def tag(self, image: str, repository: str, tag: str) -> None:
        await self._json("POST", f"/images/{image}/tag", params={"repo": repository, "tag": tag}, empty=True)

    async def remove_image(self, ref: str) -> bool:
        """Remove a tag, or an untagged image by id; never forced. False when it was already gone."""
        result = await self._json("DELETE", f"/images/{ref}", params={"noprune": "0"}, missing_ok=True)
        return result is not None

    async def delete_image(self, ref: str) -> list[JsonMessage] | None:
        """DELETE /images/{ref}, never forced: what the engine untagged and deleted; None when it is not there.
        The engine refuses (409, an EngineError) an image a container uses."""
        result = await self._json("DELETE", f"/images/{ref}", params={"noprune": "0"}, missing_ok=True)
        return None if result is None else [entry for entry in result if isinstance(entry, dict)]

    async def containers_using(self, image_id: str) -> list[str]:
        """Ids of the containers (running or not) made from this image."""
        params = {"all": "1", "filters": json.dumps({"ancestor": [image_id]})}
        return [str(c.get("Id", "")) for c in await self._json("GET", "/containers/json", params=params)]

    @asynccontextmanager
    async def post_stream(
        self,
        path: str,
        params: list[tuple[str, str | int | float | bool | None]] | dict[str, str],
        body: AsyncIterable[bytes],
        content_type: str = "application/x-tar",
    ) -> AsyncIterator[AsyncIterator[JsonMessage]]:
        """POST a streamed body (no read/write timeout) and iterate the engine's JSON messages.

        An error status or an `errorDetail` message raises EngineError while iterating.
        """
        timeout = httpx.Timeout(None, connect=self._client.timeout.connect)
        request = self._client.build_request(
            "POST", path, params=params, content=body, headers={"Content-Type": content_type}, timeout=timeout
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _translate(exc, path) from None
        try:
            if response.status_code >= 400:
                await response.aread()
                raise engine_failure(
                    f"the engine refused the request: {_message(response)}", f"HTTP {response.status_code}"
                )
            yield _messages(response, path)
        finally:
            await response.aclose()

    async def _json(
        self, method: str, path: str, *, params: Any = None, missing_ok: bool = False, empty: bool = False
    ) -> Any:
        try:
            response = await self._client.request(method, path, params=params)
        except httpx.HTTPError as exc:
            raise _translate(exc, path) from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            raise engine_failure(
                f"the engine answered {method} {path} with an error: {_message(response)}",
                f"HTTP {response.status_code}",
            )
        if empty or not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise EngineError(f"the engine sent an unreadable answer to {path}", str(exc)) from None


async def _messages(response: httpx.Response, path: str) -> AsyncIterator[JsonMessage]:
    try:
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                raise EngineError("the engine sent an unreadable progress line", line[:200]) from None
            if not isinstance(message, dict):
                continue
            if "errorDetail" in message or "error" in message:
                detail = message.get("errorDetail") or {}
                text = detail.get("message") if isinstance(detail, dict) else None
                raise engine_failure(f"the engine failed: {text or message.get('error')}", json.dumps(message)[:500])
            yield message
    except httpx.HTTPError as exc:
        raise _translate(exc, path) from None


# How an engine says its disk is full, whatever it was writing (a layer, repositories.json, a temp file):
# the text of ENOSPC and EDQUOT as Go prints them.
_DISK_FULL = ("no space left on device", "disk quota exceeded")


def says_disk_full(text: str) -> bool:
    lowered = text.lower()
    return any(words in lowered for words in _DISK_FULL)


def engine_failure(message: str, detail: str) -> ImporterError:
    """Name what the engine's own words say went wrong: a full disk is the user's to fix, not an engine bug.

    Every engine answer goes through here: a streamed `errorDetail`, an error status on the streamed
    request, and an error status on a plain request (tagging writes repositories.json, which can be what
    fills the disk)."""
    if says_disk_full(message) or says_disk_full(detail):
        return InsufficientDisk(
            "the engine ran out of disk space while importing; free space on its data root", f"{message} ({detail})"
        )
    return EngineError(message, detail)


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", "")).strip() or response.reason_phrase
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase


def _translate(exc: httpx.HTTPError, path: str) -> EngineUnreachable | EngineError:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return EngineUnreachable("cannot reach the Docker engine (is it running? is DOCKER_HOST right?)", str(exc))
    if isinstance(exc, httpx.TimeoutException):
        return EngineError(f"the engine did not answer {path} in time", str(exc))
    return EngineError(f"the connection to the engine broke during {path}", f"{type(exc).__name__}: {exc}")
