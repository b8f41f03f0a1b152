"""HTTP plumbing of the URL source: requests whose redirects stay inside the allow-list, answers read
into sizes and validators, and connections another thread can cut.

A download can be stopped from another thread at any moment (a cancelled job): the sockets of its
connections are shut down, which wakes a read blocked on a stalled server at once and tells the
server the connection is gone. Closing them would do neither while another thread waits on them.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from ferry_contract import ErrorCode
from ferry_contract.urls import UrlPrefix
from ferry_importer.errors import Interrupted, SourceNotFound, SourceUnavailable, UploadAbandoned
from ferry_importer.sources.allowlist import SourceRejected, check_url, redact_url

MAX_REDIRECTS = 5
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass
class Validator:
    etag: str | None = None
    last_modified: str | None = None

    def if_range(self) -> str | None:
        """If-Range needs a strong ETag or a Last-Modified date; weak ETags are not allowed there."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified

    def same_entity(self, response: httpx.Response) -> bool:
        """False only when a validator proves the resource changed; unknown counts as the same."""
        etag = response.headers.get("etag")
        if self.etag and etag:
            return etag == self.etag
        modified = response.headers.get("last-modified")
        if self.last_modified and modified:
            return modified == self.last_modified
        return True


class LiveConnections:
    """The network streams a download opened, so `abort()` from another thread can cut them.

    Streams are learnt through httpcore's `trace` request extension (at TCP connect and TLS start,
    before any answer) and from each response; they are held weakly, so finished ones go away.
    """

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[Any] = weakref.WeakSet()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self.add(info.get("return_value"))

    def add(self, stream: Any) -> None:
        if stream is None or not hasattr(stream, "get_extra_info"):
            return
        with self._lock:
            if not self.stopped.is_set():
                self._streams.add(stream)
                return
        _shut_down(stream)  # opened while (or after) we were stopped: cut it at once

    def abort(self) -> None:
        with self._lock:
            self.stopped.set()
            streams = list(self._streams)
        for stream in streams:
            _shut_down(stream)


def _shut_down(stream: Any) -> None:
    sock = stream.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed or never connected: nothing to wake
        pass


def send(
    client: httpx.Client,
    method: str,
    url: str,
    headers: dict[str, str],
    prefixes: list[UrlPrefix],
    live: LiveConnections | None = None,
) -> httpx.Response:
    """One request with redirects followed by hand, each hop checked against the allow-list."""
    live = live or LiveConnections()
    for _ in range(MAX_REDIRECTS + 1):
        if live.stopped.is_set():
            raise Interrupted("download stopped")
        request = client.build_request(method, url, headers=headers, extensions={"trace": live.trace})
        try:
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            if live.stopped.is_set():
                raise Interrupted("download stopped") from None
            if isinstance(exc, httpx.TimeoutException):
                raise SourceUnavailable(f"{redact_url(url)} timed out", str(exc)) from None
            raise SourceUnavailable(f"{redact_url(url)} is unreachable", f"{type(exc).__name__}: {exc}") from None
        live.add(response.extensions.get("network_stream"))
        if response.status_code not in (301, 302, 303, 307, 308) or "location" not in response.headers:
            return response
        response.close()
        target = str(response.url.join(response.headers["location"]))
        try:
            url = check_url(target, prefixes)
        except SourceRejected as exc:
            raise SourceRejected(f"{redact_url(url)} redirects outside the allowed prefixes", exc.message) from None
    raise SourceUnavailable(f"{redact_url(url)} redirects too often")


def raise_for_status(response: httpx.Response, name: str) -> None:
    status = response.status_code
    if status < 400:
        return
    code = error_code(response) if status == 409 else None
    response.close()
    if code == ErrorCode.UPLOAD_ABANDONED:
        raise UploadAbandoned(f"{name} is an upload that stopped arriving: it was abandoned", f"HTTP {status} {code}")
    if status in (404, 410):
        raise SourceNotFound(f"{name} does not exist (HTTP {status})")
    raise SourceUnavailable(f"{name} answered HTTP {status}", code)


def error_code(response: httpx.Response, limit: int = 64 * 1024) -> str | None:
    """The stable code of a `{"error": {"code"}}` answer, read from at most `limit` bytes of its body."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    body = b""
    try:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > limit:
                return None
        code = json.loads(body)["error"]["code"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def total_size(response: httpx.Response) -> int | None:
    match = CONTENT_RANGE.match(response.headers.get("content-range", ""))
    if response.status_code == 206 and match and match.group(3) != "*":
        return int(match.group(3))
    length = response.headers.get("content-length")
    return int(length) if length and length.isascii() and length.isdigit() and response.status_code == 200 else None
