"""Images kept as `docker save` archives outside the clone, keyed by what built them (stdlib only).

A fresh engine (CI's fresh clone, a new `.run/`) loads an image from the cache in seconds instead of
building it. The key of one of ferry's images is a hash of its Dockerfile, its .dockerignore, every file
of the build context that .dockerignore lets through, the build arguments and the IDs of the base
images: change any of them and the image is built again. Entries are written to a temporary folder
renamed into place (scripts/debian_rootfs.py's build_atomically); older entries of the same image beyond
the newest few are removed, so the cache does not grow with every commit.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

KEEP = 3  # entries kept per image: enough for a few branches side by side on one machine


def _patterns(ignore_text: str) -> tuple[list[str], list[str]]:
    """(included paths, excluded patterns) of a .dockerignore that starts with `**` (everything excluded)."""
    lines = [line.strip() for line in ignore_text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines or lines[0] != "**":
        raise ValueError("the .dockerignore must start with `**` and then name what the context includes")
    includes = [line[1:].strip("/") for line in lines[1:] if line.startswith("!")]
    excludes = [line.strip("/") for line in lines[1:] if not line.startswith("!")]
    return includes, excludes


def _excluded(rel: str, excludes: list[str]) -> bool:
    parts = rel.split("/")
    for pattern in excludes:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                return True
        elif rel == pattern or rel.startswith(pattern + "/") or fnmatch.fnmatchcase(rel, pattern):
            return True
    return False


def context_files(root: Path, ignore_text: str) -> Iterator[str]:
    """The files of the build context rooted at `root` (relative, sorted), as the .dockerignore selects them."""
    includes, excludes = _patterns(ignore_text)
    found: set[str] = set()
    for include in includes:
        path = root / include
        if path.is_file():
            found.add(include)
            continue
        for folder, dirs, files in os.walk(path):
            base = Path(folder).relative_to(root).as_posix()
            dirs[:] = [d for d in dirs if not _excluded(f"{base}/{d}", excludes)]
            found.update(f"{base}/{f}" for f in files if not _excluded(f"{base}/{f}", excludes))
    yield from sorted(found)


def digest(root: Path, dockerfile: Path, args: dict[str, str], base_ids: list[str]) -> str:
    """The key of the image `dockerfile` builds from the context `root` with `args` on bases `base_ids`."""
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    ignore_text = ignore.read_text()
    hashed = hashlib.sha256()
    for part in (dockerfile.read_bytes(), ignore_text.encode(), repr(sorted(args.items())).encode(), *base_ids):
        hashed.update(part if isinstance(part, bytes) else part.encode())
        hashed.update(b"\0")
    for rel in context_files(root, ignore_text):
        path = root / rel
        mode = b"x" if os.access(path, os.X_OK) else b"-"
        hashed.update(rel.encode() + b"\0" + mode + hashlib.sha256(path.read_bytes()).digest())
    return hashed.hexdigest()[:16]


def prune(cache_root: Path, prefix: str, keep: int = KEEP) -> list[Path]:
    """Remove the entries named prefix* beyond the newest `keep`; returns what was removed."""
    entries = sorted(
        (p for p in cache_root.glob(f"{prefix}*") if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return entries[keep:]


def cached(docker, ref: str, folder: Path, build: Callable[[], None], build_atomically) -> bool:
    """Make sure the engine has `ref`: already there, loaded from `folder`, or built and saved there.

    Returns True when it was built now."""
    if docker.has(ref):
        return False
    made = []

    def make(tmp: Path) -> None:
        build()
        made.append(True)
        with open(tmp / "image.tar", "wb") as out:
            docker.run("save", ref, stdout=out)

    build_atomically(folder, make)
    if not docker.has(ref):
        with open(folder / "image.tar", "rb") as saved:
            docker.run("load", "-q", stdin=saved, quiet=True)
    return bool(made)
