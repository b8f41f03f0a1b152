"""A URL source: the archive streamed over HTTP(S), resuming a dropped connection with a Range request.

It implements the pipeline's source protocol (`size`, `describe()`, `open()`, `path`). `open()` returns
a blocking reader for the pipeline's decompression thread. When the connection drops, the reader asks
for `bytes=<offset>-` (with `If-Range`, so a changed file is never spliced) and carries on; the caller
never notices except for a log line. A size the job gives is checked as the bytes pass (too many
fails at once, too few at end of stream); the sha256 is checked by the pipeline over the same bytes at
end of stream, before the engine may commit. Every redirect hop must stay inside the allow-list.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from dataclasses import dataclass

import httpx

from ferry_contract.urls import UrlPrefix

from .allowlist import SourceRejected, check_url, redact_url
from .errors import Interrupted, SourceMismatch, SourceNotFound, SourceUnavailable

log = logging.getLogger("ferry_importer.sources_url")

# A dropped pull is usually a backend restart or a proxy blip: retry soon rather than back off for minutes.
RESUME_DELAY_MAX_S = 5.0

MAX_REDIRECTS = 5
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass
class _Validator:
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


class UrlSource:
    path = None

    def __init__(
        self,
        url: str,
        *,
        prefixes: list[UrlPrefix],
        size: int | None = None,
        timeout_s: float = 60.0,
        max_resumes: int = 16,
        resume_backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url = check_url(url, prefixes)
        self.size = size
        self.expected_size = size
        self._prefixes = prefixes
        self._timeout = httpx.Timeout(timeout_s)
        self._max_resumes = max_resumes
        self._backoff = resume_backoff_s
        self._transport = transport
        self._validator = _Validator()
        self.resumes = 0

    def describe(self) -> str:
        return redact_url(self.url)

    def client(self) -> httpx.Client:
        return httpx.Client(
            timeout=self._timeout, follow_redirects=False, transport=self._transport,
            headers={"accept-encoding": "identity", "user-agent": "ferry-importer"},
        )

    def probe(self) -> None:
        """Learn size and validators before the import starts (blocking; run it off the event loop)."""
        with self.client() as client:
            response = send(client, "HEAD", self.url, {}, self._prefixes)
            if response.status_code in (405, 501):
                response = send(client, "GET", self.url, {"range": "bytes=0-0"}, self._prefixes)
            _raise_for_status(response, self.describe())
            total = _total_size(response)
            response.close()
        self._validator = _Validator(response.headers.get("etag"), response.headers.get("last-modified"))
        if total is not None and self.expected_size is not None and total != self.expected_size:
            raise SourceMismatch(f"{self.describe()} is {total} bytes, the job says {self.expected_size}")
        if self.size is None:
            self.size = total

    def open(self) -> "RangeReader":
        return RangeReader(self)


def send(
    client: httpx.Client, method: str, url: str, headers: dict[str, str], prefixes: list[UrlPrefix]
) -> httpx.Response:
    """One request with redirects followed by hand, each hop checked against the allow-list."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = client.send(client.build_request(method, url, headers=headers), stream=True)
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(f"{redact_url(url)} timed out", str(exc)) from None
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"{redact_url(url)} is unreachable", f"{type(exc).__name__}: {exc}") from None
        if response.status_code not in (301, 302, 303, 307, 308) or "location" not in response.headers:
            return response
        response.close()
        target = str(response.url.join(response.headers["location"]))
        try:
            url = check_url(target, prefixes)
        except SourceRejected as exc:
            raise SourceRejected(f"{redact_url(url)} redirects outside the allowed prefixes", exc.message) from None
    raise SourceUnavailable(f"{redact_url(url)} redirects too often")


def _raise_for_status(response: httpx.Response, name: str) -> None:
    status = response.status_code
    if status < 400:
        return
    response.close()
    if status in (404, 410):
        raise SourceNotFound(f"{name} does not exist (HTTP {status})")
    raise SourceUnavailable(f"{name} answered HTTP {status}")


def _total_size(response: httpx.Response) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    if response.status_code == 206 and match and match.group(3) != "*":
        return int(match.group(3))
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() and response.status_code == 200 else None


class RangeReader(io.RawIOBase):
    """Blocking reader over one or more GETs of the same resource; resumes at the byte it stopped."""

    def __init__(self, source: UrlSource):
        super().__init__()
        self._source = source
        self._client = source.client()
        self._response: httpx.Response | None = None
        self._chunks = None
        self._pending = b""
        self._offset = 0
        self._failures = 0
        self._stopped = threading.Event()
        self._eof = False

    def readable(self) -> bool:
        return True

    @property
    def offset(self) -> int:
        return self._offset

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while not self._pending:
            if self._eof:
                return 0
            self._pending = self._next_chunk()
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _next_chunk(self) -> bytes:
        while True:
            if self._stopped.is_set():
                raise Interrupted("download stopped")
            if self._chunks is None:
                self._connect()
                if self._chunks is None:
                    continue
            try:
                chunk = next(self._chunks)  # type: ignore[arg-type]
            except StopIteration:
                chunk = b""
            except httpx.HTTPError as exc:
                self._dropped(f"{type(exc).__name__}: {exc}")
                continue
            if chunk:
                self._accept(chunk)
                return chunk
            total = self._source.size
            if total is not None and self._offset < total:
                self._dropped(f"connection closed at byte {self._offset} of {total}")
                continue
            self._finish()
            return b""

    def _accept(self, chunk: bytes) -> None:
        self._offset += len(chunk)
        self._failures = 0
        expected = self._source.expected_size
        if expected is not None and self._offset > expected:
            raise SourceMismatch(f"{self._source.describe()} is longer than the {expected} bytes announced")

    def _finish(self) -> None:
        self._eof = True
        self._close_response()
        source = self._source
        if source.expected_size is not None and self._offset != source.expected_size:
            raise SourceMismatch(
                f"{source.describe()} ended after {self._offset} bytes, the job says {source.expected_size}"
            )

    def _dropped(self, why: str) -> None:
        self._close_response()
        self._failures += 1
        if self._failures > self._source._max_resumes:
            raise SourceUnavailable(
                f"{self._source.describe()} keeps dropping the connection at byte {self._offset}", why
            )
        delay = min(self._source._backoff * 2 ** (self._failures - 1), RESUME_DELAY_MAX_S)
        log.warning("download of %s dropped (%s); resuming at byte %d in %.1fs",
                    self._source.describe(), why, self._offset, delay)
        if self._stopped.wait(delay):
            raise Interrupted("download stopped")

    def _connect(self) -> None:
        source = self._source
        headers: dict[str, str] = {}
        if self._offset:
            headers["range"] = f"bytes={self._offset}-"
            validator = source._validator.if_range()
            if validator:
                headers["if-range"] = validator
        try:
            response = send(self._client, "GET", source.url, headers, source._prefixes)
        except SourceUnavailable as exc:
            self._dropped(exc.detail or exc.message)
            return
        if response.status_code >= 500:
            response.close()
            self._dropped(f"HTTP {response.status_code}")
            return
        _raise_for_status(response, source.describe())
        if self._offset == 0:
            self._remember(response)
        elif not self._resume_ok(response):
            return
        if self._offset:
            source.resumes += 1
        self._response = response
        self._chunks = response.iter_raw()  # as received: a drop loses nothing buffered

    def _remember(self, response: httpx.Response) -> None:
        if not self._source._validator.if_range():
            self._source._validator = _Validator(response.headers.get("etag"), response.headers.get("last-modified"))
        if self._source.size is None:
            self._source.size = _total_size(response)

    def _resume_ok(self, response: httpx.Response) -> bool:
        """A resumed answer must continue exactly at our offset; a full 200 means the file changed or no Range."""
        name = self._source.describe()
        if response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match and int(match.group(1)) == self._offset:
                return True
            response.close()
            raise SourceUnavailable(f"{name} resumed at the wrong byte", response.headers.get("content-range"))
        response.close()
        if not self._source._validator.same_entity(response):
            raise SourceMismatch(f"{name} changed while it was being downloaded")
        raise SourceUnavailable(f"{name} dropped the connection and cannot resume (no Range)")

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = None
        self._chunks = None

    def close(self) -> None:
        """Stop for good; safe to call from another thread (wakes a resume back-off)."""
        self._stopped.set()
        if not self.closed:
            self._close_response()
            self._client.close()
        super().close()
