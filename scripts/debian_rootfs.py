#!/usr/bin/env python3
"""A real Debian root filesystem (debootstrap), cached outside the clone so a second run is fast (stdlib only).

The tree is what the real-image tests import and what the stand-in base images for the Dockerfiles are
made from. It lives under ${XDG_CACHE_HOME:-~/.cache}/ferry, in a folder named after a key of everything
that built it (suite, variant, mirror, debootstrap version, this recipe): change any of them and a new
tree is built beside the old one. A build goes into a temporary folder renamed into place only when it
is complete, under a lock, so a killed build never leaves a half tree and two runs never build twice.

    python3 scripts/debian_rootfs.py            # prints the tree's path (building it when missing)
    python3 scripts/debian_rootfs.py --key      # prints the cache key only
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = "bookworm"
VARIANT = "minbase"
RECIPE = 1  # bump when the steps below change what the tree contains
DEFAULT_MIRROR = "http://deb.debian.org/debian"


class RootfsUnavailable(RuntimeError):
    pass


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ferry"


def mirror() -> str:
    return os.environ.get("FERRY_DEBIAN_MIRROR", DEFAULT_MIRROR)


def _debootstrap() -> str:
    found = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if os.access("/usr/sbin/debootstrap", os.X_OK) else None
    )
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"], check=False, env=env
        )
        if os.access("/usr/sbin/debootstrap", os.X_OK):
            return "/usr/sbin/debootstrap"
    raise RootfsUnavailable(
        "debootstrap is missing: apt-get install debootstrap (scripts/system-deps.sh does it as root)"
    )


def _debootstrap_version() -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "debootstrap"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def key() -> str:
    """Short hash of what builds the tree: a different recipe never reuses an old tree."""
    what = {
        "suite": SUITE,
        "variant": VARIANT,
        "mirror": mirror(),
        "debootstrap": _debootstrap_version(),
        "recipe": RECIPE,
    }
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]
    return f"debian-{SUITE}-{VARIANT}-{digest}"


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock on `path` (a file beside the cache entry) for the length of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_atomically(final: Path, build) -> Path:
    """Run build(tmp_dir) into a temp folder beside `final` and rename it into place; reuse `final` if there."""
    if final.is_dir():
        return final
    with locked(final.parent / f".{final.name}.lock"):
        if final.is_dir():  # another run built it while we waited
            return final
        for stale in final.parent.glob(f".{final.name}.tmp-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            build(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def _debootstrap_into(tmp: Path) -> None:
    tree = tmp / "rootfs"
    log = tmp / "debootstrap.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        done = subprocess.run(
            [_debootstrap(), f"--variant={VARIANT}", SUITE, str(tree), mirror()], stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        lines = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RootfsUnavailable(f"debootstrap failed ({done.returncode}): {' | '.join(lines)}")
    for leftover in (tree / "var/cache/apt/archives").glob("*.deb"):  # downloaded packages: not part of an image
        leftover.unlink()
    (tmp / "built.json").write_text(json.dumps({"key": key(), "seconds": round(time.monotonic() - started, 1)}))


def rootfs() -> Path:
    """The cached tree's path (the folder holding `rootfs/`), built when missing."""
    if os.geteuid() != 0:
        raise RootfsUnavailable("debootstrap needs root")
    _debootstrap()  # installed first: its version is part of the key
    return build_atomically(cache_root() / key(), _debootstrap_into) / "rootfs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", action="store_true", help="print the cache key and exit")
    args = parser.parse_args()
    if args.key:
        print(key())
        return 0
    try:
        print(rootfs())
    except RootfsUnavailable as exc:
        print(f"debian_rootfs: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
