"""The "already present" fast path: remember which archive produced which image, and check it cheaply.

A small JSON index under the data directory maps a file's identity (device, inode, size, mtime) to
its sha256, so a re-run on an unchanged file knows the digest without reading it, and each archive
digest to the image it produced. Imports whose digest is known before they start also carry it in a
label, so the engine itself remembers even when the index is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ferry_importer.datadir import default_data_dir

INDEX_VERSION = 1
FINGERPRINT_LABEL = "ferry.import.fingerprint"
MAX_FILES = 1000


def fingerprint(sha256: str, mode: str, changes: list[str]) -> str:
    """What makes two imports equal: the archive bytes, load vs import, and the change lines."""
    text = "\n".join([mode, sha256, *changes])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Entry:
    sha256: str
    size: int | None
    mode: str
    fingerprint: str
    image_id: str
    tags: list[str] = field(default_factory=list)
    recorded_at: float = field(default_factory=time.time)


class ImportIndex:
    """index.json in the data directory; every write replaces the file atomically."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.path = self.data_dir / "index.json"
        self._files: dict[str, str] = {}
        self._entries: dict[str, dict] = {}
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == INDEX_VERSION:
            self._files = dict(data.get("files") or {})
            self._entries = dict(data.get("images") or {})

    @staticmethod
    def _identity_key(identity: tuple) -> str:
        return ":".join(str(part) for part in identity)

    def known_sha256(self, identity: tuple | None) -> str | None:
        return self._files.get(self._identity_key(identity)) if identity else None

    def entries_for(self, ref: str | None, sha256: str | None = None) -> list[Entry]:
        """Entries that produced `ref` (or, without a ref, that came from `sha256`), newest first."""
        found = []
        for value in self._entries.values():
            try:
                entry = Entry(**value)
            except TypeError:
                continue
            if (ref and ref in entry.tags) or (not ref and sha256 and entry.sha256 == sha256):
                found.append(entry)
        return sorted(found, key=lambda e: e.recorded_at, reverse=True)

    def record(self, entry: Entry, identity: tuple | None) -> None:
        if identity:
            self._files[self._identity_key(identity)] = entry.sha256
            while len(self._files) > MAX_FILES:
                self._files.pop(next(iter(self._files)))
        for key, value in list(self._entries.items()):  # a tag belongs to one image: drop stale claims
            value["tags"] = [t for t in value.get("tags", []) if t not in entry.tags]
            if not value["tags"] and key != entry.fingerprint:
                del self._entries[key]
        self._entries[entry.fingerprint] = asdict(entry)
        self._save()

    def _save(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"version": INDEX_VERSION, "files": self._files, "images": self._entries}, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=".index-", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(payload)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def entry_for(sha256: str, size: int | None, mode: str, changes: list[str], image_id: str, tags: list[str]) -> Entry:
    return Entry(
        sha256=sha256,
        size=size,
        mode=mode,
        image_id=image_id,
        tags=list(dict.fromkeys(tags)),
        fingerprint=fingerprint(sha256, mode, changes if mode == "import" else []),
    )
