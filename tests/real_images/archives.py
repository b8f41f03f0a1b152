"""Archives of the cached Debian tree, in the shapes vendors ship, made once per tree and kept beside it.

plain tar, single-block xz (what `xz` without threads writes, as vendor .tar.xz files are), gzip, and
a `docker save` of the tree imported as an image. Compression uses fast settings: what matters here is
the format, not the ratio. Each set is built into a temporary folder and renamed into place, like the
tree, so a killed run never leaves a half archive in the cache.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import docker

from tests.support.rootfs import build_atomically, cache_root, key

RECIPE = 1  # bump when the archives' making changes
FORMATS = ("tar", "tar.xz", "tar.gz", "docker-save")
SAVED_REF = "ferry-realimg/debian-saved"


@dataclass(frozen=True)
class Archives:
    tar: Path
    xz: Path
    gz: Path
    saved: Path
    saved_ref: str

    def of(self, fmt: str) -> Path:
        return {"tar": self.tar, "tar.xz": self.xz, "tar.gz": self.gz, "docker-save": self.saved}[fmt]


def _run(argv: list[str], out: Path | None = None) -> None:
    with open(out, "wb") if out else open("/dev/null", "wb") as sink:
        done = subprocess.run(argv, stdout=sink, stderr=subprocess.PIPE)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")


def _compressed(tree: Path, tmp: Path) -> None:
    tar = tmp / "debian.tar"
    _run(["tar", "--numeric-owner", "--xattrs", "-C", str(tree), "-cf", str(tar), "."])
    _run(["xz", "-1", "-T1", "-c", str(tar)], tmp / "debian.tar.xz")  # one thread: one block, as vendors ship
    _run(["gzip", "-1", "-c", str(tar)], tmp / "debian.tar.gz")


def _saved(plain_tar: Path, client: docker.DockerClient, tag: str):
    def build(tmp: Path) -> None:
        ref = f"{SAVED_REF}:{tag}"
        client.api.import_image_from_file(str(plain_tar), repository=SAVED_REF, tag=tag)
        try:
            with open(tmp / "debian-save.tar", "wb") as out:
                for chunk in client.images.get(ref).save(named=True):
                    out.write(chunk)
        finally:
            client.api.remove_image(ref, force=True)

    return build


def archives(tree: Path, client: docker.DockerClient) -> Archives:
    """The four archives of `tree`, from the cache when this tree's set was made before."""
    name = f"{key()}-archives-{RECIPE}"
    folder = build_atomically(cache_root() / name, lambda tmp: _compressed(tree, tmp))
    tag = key().rsplit("-", 1)[-1]  # the tree's hash: the saved tag names the tree it holds
    saved = build_atomically(cache_root() / f"{name}-saved", _saved(folder / "debian.tar", client, tag))
    return Archives(
        tar=folder / "debian.tar",
        xz=folder / "debian.tar.xz",
        gz=folder / "debian.tar.gz",
        saved=saved / "debian-save.tar",
        saved_ref=f"{SAVED_REF}:{tag}",
    )
