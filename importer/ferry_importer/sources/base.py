"""Where archive bytes come from. The pipeline reads any `Source`; the CLI uses `LocalFileSource`.

A source is opened once, in the decompression thread, and read front to back: nothing is read twice.
`ConsumedBytes` wraps the opened file to count and hash exactly the bytes the pipeline consumed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from ferry_importer.errors import SourceNotFound, SourceUnavailable


@runtime_checkable
class Source(Protocol):
    """What the pipeline needs from an archive source.

    `open()` is called from the decompression worker thread and may block; the reader it returns
    must accept `close()` from another thread (a cancelled job), ending a blocked read promptly.
    `path` (optional) lets the pipeline look up the uncompressed size in the file's trailer and key
    the fast-path index. A network source may offer `probe()` (blocking: learn `size` before the
    stream starts) and `abort_probe()` (from another thread: end a probe at once).
    """

    size: int | None

    def describe(self) -> str: ...

    def open(self) -> BinaryIO: ...


class LocalFileSource:
    """An archive file on this host."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise SourceNotFound(f"archive {self.path} does not exist") from None
        except OSError as exc:
            raise SourceUnavailable(f"cannot read archive {self.path}", str(exc)) from None
        if not self.path.is_file():
            raise SourceNotFound(f"archive {self.path} is not a regular file")
        self.size: int | None = stat.st_size
        self.identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def describe(self) -> str:
        return str(self.path)

    def open(self) -> BinaryIO:
        try:
            return open(self.path, "rb")  # noqa: SIM115 - closed by the reader thread
        except OSError as exc:
            raise SourceUnavailable(f"cannot read archive {self.path}", str(exc)) from None


def source_path(source: object) -> Path | None:
    path = getattr(source, "path", None)
    return Path(path) if path is not None else None


class ConsumedBytes:
    """A read-only file wrapper that counts and sha256-hashes every byte handed out."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._raw.read(size)
        except OSError as exc:
            raise SourceUnavailable("reading the archive failed", str(exc)) from None
        if data:
            self._hash.update(data)
            self.count += len(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        self._raw.close()
