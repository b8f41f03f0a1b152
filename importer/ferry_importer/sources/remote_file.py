"""A URL source read at chosen places with Range requests: how the up-front disk check learns an archive's
uncompressed size (xz index and gzip trailer at the end, zstd header at the start) before streaming it.

Reads are few and small (an xz index walk is a handful of requests); a server that answers anything but
206 for them, or more reads than `max_requests`, end the attempt with OSError: the check is skipped then,
exactly as for a local archive whose metadata says nothing.
"""

from __future__ import annotations

import io

from ferry_importer.errors import ImporterError
from ferry_importer.sources.url import UrlSource
from ferry_importer.sources.url_fetch import send

MAX_READ = 1 << 20  # an xz index of a 600 MB archive with 1 MiB blocks is a few kB


class RemoteFile(io.RawIOBase):
    def __init__(self, source: UrlSource, size: int, max_requests: int = 32) -> None:
        self._source = source
        self._size = size
        self._pos = 0
        self._left = max_requests
        self._client = source.client()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self._size - self._pos, MAX_READ)
        if want <= 0:
            return 0
        data = self._get(self._pos, want)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _get(self, start: int, length: int) -> bytes:
        if self._left <= 0:
            raise OSError("too many reads to learn the archive's size")
        self._left -= 1
        headers = {"range": f"bytes={start}-{start + length - 1}"}
        try:
            response = send(self._client, "GET", self._source.url, headers, self._source._prefixes)
        except ImporterError as exc:
            raise OSError(exc.message) from None
        try:
            if response.status_code != 206:
                raise OSError(f"the source answered HTTP {response.status_code} to a Range request")
            data = response.read()
        finally:
            response.close()
        if len(data) != length:
            raise OSError("the source sent a short range")
        return data

    def close(self) -> None:
        self._client.close()
        super().close()
