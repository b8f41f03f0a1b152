"""A URL source: the archive streamed over HTTP(S), resuming a dropped connection with a Range request.

It implements the pipeline's source protocol (`size`, `describe()`, `open()`, `path`). `open()` returns
a blocking reader for the pipeline's decompression thread. When the connection drops, the reader asks
for `bytes=<offset>-` (with `If-Range`, so a changed file is never spliced) and carries on; the caller
never notices except for a log line. A size the job gives is checked as the bytes pass (too many
fails at once, too few at end of stream); the sha256 is checked by the pipeline over the same bytes at
end of stream, before the engine may commit. Every redirect hop must stay inside the allow-list.
A cancelled job stops a download from another thread at once (`RangeReader.close`, `abort_probe`).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from typing import BinaryIO, cast

import httpx

from ferry_contract.urls import UrlPrefix
from ferry_importer.errors import Interrupted, SourceMismatch, SourceUnavailable
from ferry_importer.sources.allowlist import check_url, redact_url
from ferry_importer.sources.arriving import UploadState, upload_state
from ferry_importer.sources.url_fetch import (
    CONTENT_RANGE,
    LiveConnections,
    Validator,
    raise_for_status,
    send,
    total_size,
)

log = logging.getLogger("ferry_importer.sources.url")

# A dropped pull is usually a backend restart or a proxy blip: retry soon rather than back off for minutes.
RESUME_DELAY_MAX_S = 5.0


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
        self._validator = Validator()
        self._probe_connections = LiveConnections()
        self.resumes = 0
        self.arriving = False  # an upload the backend is still receiving (learnt by `probe()`)
        self.reader: RangeReader | None = None

    def describe(self) -> str:
        return redact_url(self.url)

    def client(self) -> httpx.Client:
        return httpx.Client(
            timeout=self._timeout,
            follow_redirects=False,
            transport=self._transport,
            headers={"accept-encoding": "identity", "user-agent": "ferry-importer"},
        )

    def probe(self) -> None:
        """Learn size and validators before the import starts (blocking; run it off the event loop).

        `abort_probe()` from another thread ends it at once with Interrupted."""
        live = self._probe_connections
        with self.client() as client:
            response = send(client, "HEAD", self.url, {}, self._prefixes, live)
            if response.status_code in (405, 501):
                response = send(client, "GET", self.url, {"range": "bytes=0-0"}, self._prefixes, live)
            raise_for_status(response, self.describe())
            total = total_size(response)
            response.close()
        state = upload_state(response.headers)
        if state is not None and state.available < state.length:
            self.arriving = True  # an upload still arriving: it is read as it lands
        self._validator = Validator(response.headers.get("etag"), response.headers.get("last-modified"))
        if total is not None and self.expected_size is not None and total != self.expected_size:
            raise SourceMismatch(f"{self.describe()} is {total} bytes, the job says {self.expected_size}")
        if self.size is None:
            self.size = total

    def abort_probe(self) -> None:
        self._probe_connections.abort()

    def upload_state(self) -> UploadState | None:
        """How much of an upload has arrived and, once complete, its sha256 (a HEAD; blocking, off the loop).
        None when the server does not say (not an upload)."""
        with self.client() as client:
            response = send(client, "HEAD", self.url, {}, self._prefixes, self._probe_connections)
            raise_for_status(response, self.describe())
            response.close()
        return upload_state(response.headers)

    @property
    def read_offset(self) -> int:
        """Bytes the opened reader has received so far (0 before it opened)."""
        return self.reader.offset if self.reader is not None else 0

    def open(self) -> BinaryIO:
        self.reader = RangeReader(self)
        return cast(BinaryIO, self.reader)  # a raw binary reader: read/readinto/close, what the reader uses


class RangeReader(io.RawIOBase):
    """Blocking reader over one or more GETs of the same resource; resumes at the byte it stopped.

    One thread reads; `close()` may come from any thread and ends a blocked read at once.
    """

    def __init__(self, source: UrlSource):
        super().__init__()
        self._source = source
        self._client = source.client()
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._pending = b""
        self._offset = 0
        self._failures = 0
        self._live = LiveConnections()
        self._reading = threading.Lock()  # held by the reading thread; close() frees nothing under it
        self._eof = False

    def readable(self) -> bool:
        return True

    @property
    def offset(self) -> int:
        return self._offset

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        with self._reading:
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
            if self._live.stopped.is_set():
                raise Interrupted("download stopped")
            if self._chunks is None:
                self._connect()
                if self._chunks is None:
                    continue
            try:
                chunk = next(self._chunks)
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
        if self._live.stopped.is_set():  # we cut the connection ourselves: no resume, no warning
            raise Interrupted("download stopped")
        self._failures += 1
        if self._failures > self._source._max_resumes:
            raise SourceUnavailable(
                f"{self._source.describe()} keeps dropping the connection at byte {self._offset}", why
            )
        delay = min(self._source._backoff * 2 ** (self._failures - 1), RESUME_DELAY_MAX_S)
        log.warning(
            "download of %s dropped (%s); resuming at byte %d in %.1fs",
            self._source.describe(),
            why,
            self._offset,
            delay,
        )
        if self._live.stopped.wait(delay):
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
            response = send(self._client, "GET", source.url, headers, source._prefixes, self._live)
        except SourceUnavailable as exc:
            self._dropped(exc.detail or exc.message)
            return
        if response.status_code >= 500:
            response.close()
            self._dropped(f"HTTP {response.status_code}")
            return
        raise_for_status(response, source.describe())
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
            self._source._validator = Validator(response.headers.get("etag"), response.headers.get("last-modified"))
        if self._source.size is None:
            self._source.size = total_size(response)

    def _resume_ok(self, response: httpx.Response) -> bool:
        """A resumed answer must continue exactly at our offset; a full 200 means the file changed or no Range."""
        name = self._source.describe()
        if response.status_code == 206:
            match = CONTENT_RANGE.match(response.headers.get("content-range", ""))
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
        """Stop for good; safe from any thread. A read blocked on the network or in a resume back-off
        raises Interrupted at once; the connection is freed here, or by the reading thread's own
        `close()` when its read is still unwinding."""
        self._live.abort()
        if self._reading.acquire(blocking=False):
            try:
                self._close_response()
                self._client.close()
            finally:
                self._reading.release()
        super().close()
