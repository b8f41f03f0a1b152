"""Resumable uploads over tus with tuspy, in bounded memory, resuming where an earlier run stopped.

tuspy sends one chunk per PATCH and holds that chunk in memory, so the chunk size is both the memory
bound and the progress granularity: it adapts to take about half a second per PATCH, between 256 KiB
and 16 MiB. The upload URL is remembered (tuspy's URL storage) under a fingerprint of the backend,
the file's path, size, mtime and first bytes, so running the same command again resumes the upload
(or, once complete, reuses it while the backend keeps it).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from tusclient.fingerprint.interface import Fingerprint
from tusclient.storage.filestorage import FileStorage

from . import errors

MIN_CHUNK = 256 * 1024
MAX_CHUNK = 16 * 1024 * 1024
FIRST_CHUNK = 1024 * 1024
TARGET_PATCH_S = 0.5
RETRIES = 5  # a dropped connection or a 5xx/423 answer: ask the offset again and go on from there


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ferry"


def next_chunk_size(current: int, sent: int, seconds: float) -> int:
    """A chunk size that takes about TARGET_PATCH_S at the rate just measured, within the bounds."""
    if seconds <= 0 or sent <= 0:
        return current
    wanted = int(sent / seconds * TARGET_PATCH_S)
    return max(MIN_CHUNK, min(MAX_CHUNK, wanted))


class FileFingerprint(Fingerprint):
    """Identifies one file version for one backend (tuspy's default only looks at content)."""

    def __init__(self, backend_url: str, path: Path):
        stat = path.stat()
        self.prefix = f"{backend_url}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    def get_fingerprint(self, fs) -> str:
        head = fs.read(65536)
        return hashlib.sha256(self.prefix.encode() + b"|" + head).hexdigest()


def translate(exc: TusCommunicationError, url: str) -> errors.CliError:
    """tuspy's error (a status and a body, or a wrapped requests error) as a CLI error."""
    status = exc.status_code
    if status is None:
        return errors.Unreachable(f"upload to {url} failed: {exc}")
    code, message = None, f"HTTP {status} during the upload"
    try:
        body = json.loads(exc.response_content or b"")
        code, message = body["error"]["code"], body["error"]["message"]
    except (ValueError, KeyError, TypeError):
        pass
    return errors.for_status(status, code, message)


def _retryable(exc: TusCommunicationError) -> bool:
    return exc.status_code is None or exc.status_code >= 500 or exc.status_code == 423


class Upload:
    """One file's upload: created (or found again) first, its bytes sent afterwards, so imports of it can start
    while it arrives. `stop()` from another thread ends `send()` after the PATCH in flight."""

    def __init__(self, path: Path, backend_url: str, token: str) -> None:
        self.path, self.backend_url = path, backend_url
        self.total = path.stat().st_size
        if self.total == 0:
            raise errors.BadInput(f"{path} is empty", code="empty_file")
        self.endpoint = f"{backend_url}/api/uploads/"
        self.client = TusClient(self.endpoint, headers={"Authorization": f"Bearer {token}"})
        self.stopped = threading.Event()
        self.resumed = False
        self.uploader: Any = None
        self._storage: FileStorage | None = None

    @property
    def upload_id(self) -> str:
        return self.uploader.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def offset(self) -> int:
        return self.uploader.offset if self.uploader is not None else 0

    def create(self) -> str:
        """Create the upload with its length (or find this file's earlier one); return its id."""
        cache = cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        self._storage = FileStorage(str(cache / "uploads.json"))  # tuspy keeps the URL there: closed by close()
        try:
            uploader = _uploader(self.client, self.path, self._storage, FileFingerprint(self.backend_url, self.path))
            self.resumed = uploader.url is not None and uploader.offset > 0
            if uploader.url is None:
                uploader.set_url(uploader.create_url())
                uploader.offset = 0
        except TusCommunicationError as exc:
            self.close()
            raise translate(exc, self.endpoint) from None
        except BaseException:
            self.close()
            raise
        self.uploader = uploader
        return self.upload_id

    def send(
        self,
        on_progress: Callable[[int, int, bool], None] = lambda o, t, r: None,
        stop_at: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Send the bytes from where the upload stands; `on_progress(offset, total, resumed)` after every PATCH
        and once at the start."""
        assert self.uploader is not None, "create() first"
        on_progress(self.uploader.offset, self.total, self.resumed)
        end = self.total if stop_at is None else min(stop_at, self.total)
        try:
            _send(self.uploader, self.total, end, on_progress, sleep, self.resumed, self.stopped)
        except TusCommunicationError as exc:
            raise translate(exc, self.endpoint) from None

    def stop(self) -> None:
        self.stopped.set()

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()
            self._storage = None


def upload_file(
    path: Path,
    backend_url: str,
    token: str,
    *,
    on_progress: Callable[[int, int, bool], None] = lambda o, t, r: None,
    stop_at: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Upload `path` (or resume its earlier upload); return the upload id. `stop_at` ends early (tests, tooling).

    `on_progress(offset, total, resumed)` is called after every PATCH and once at the start.
    """
    upload = Upload(path, backend_url, token)
    try:
        upload_id = upload.create()
        upload.send(on_progress, stop_at=stop_at, sleep=sleep)
    finally:
        upload.close()
    return upload_id


def _uploader(client: TusClient, path: Path, storage: FileStorage, fingerprint: FileFingerprint):
    def make():
        return client.uploader(
            file_path=str(path),
            chunk_size=FIRST_CHUNK,
            metadata={"filename": path.name},
            store_url=True,
            url_storage=storage,
            fingerprinter=fingerprint,
        )

    try:
        return make()
    except TusCommunicationError as exc:
        if exc.status_code not in (404, 410):  # anything but "that upload is gone" is a real problem
            raise
    with path.open("rb") as stream:
        storage.remove_item(fingerprint.get_fingerprint(stream))
    return make()


def _send(uploader, total: int, stop_at: int, on_progress, sleep, resumed: bool, stopped: threading.Event) -> None:
    failures = 0
    while uploader.offset < stop_at and not stopped.is_set():
        uploader.chunk_size = min(uploader.chunk_size, stop_at - uploader.offset)
        before, started = uploader.offset, time.monotonic()
        try:
            uploader.upload_chunk()
        except TusCommunicationError as exc:
            failures += 1
            if not _retryable(exc) or failures > RETRIES:
                raise
            sleep(min(5.0, 0.5 * 2 ** (failures - 1)))
            try:
                uploader.offset = uploader.get_offset()
            except TusCommunicationError as again:
                if not _retryable(again):
                    raise
            continue
        failures = 0
        uploader.chunk_size = next_chunk_size(uploader.chunk_size, uploader.offset - before, time.monotonic() - started)
        on_progress(uploader.offset, total, resumed)
