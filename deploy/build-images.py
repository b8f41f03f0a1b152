#!/usr/bin/env python3
"""Build ferry's images on this machine, with a stand-in base image when no registry is reachable (stdlib only).

    python3 deploy/build-images.py [backend] [importer] [--base auto|official|standin] [--tag-suffix local]

The images need python:3.11-slim-bookworm. `auto` uses it when the engine has it or can pull it;
otherwise it builds a stand-in from Debian's packages (deploy/standin/Dockerfile.python on a debootstrap
tree, scripts/debian_rootfs.py). The stand-in is kept as a `docker save` under
${XDG_CACHE_HOME:-~/.cache}/ferry, keyed by the tree and its Dockerfile, so a fresh engine loads it in
seconds. Builds use BuildKit (a `docker` CLI that has buildx, or one older than 23 with
DOCKER_BUILDKIT=1), `--network host` (engines without a bridge network) and the machine's CA bundle as
the build secret `ca_bundle`, so pip inside the build trusts what pip outside it trusts.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "deploy" / "standin"
OFFICIAL_BASE = "python:3.11-slim-bookworm"
STANDIN_BASE = "ferry-standin/python:3.11-slim-bookworm"
IMAGES = {"backend": "deploy/Dockerfile.backend", "importer": "deploy/Dockerfile.importer"}
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")

_spec = importlib.util.spec_from_file_location("ferry_debian_rootfs_script", ROOT / "scripts" / "debian_rootfs.py")
debian_rootfs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(debian_rootfs)  # type: ignore[union-attr]


class BuildFailed(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"build-images: {message}", file=sys.stderr, flush=True)


def _client_version(cli: str) -> tuple[int, ...]:
    done = subprocess.run([cli, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True)
    try:
        return tuple(int(part) for part in done.stdout.strip().split("+")[0].split(".")[:2])
    except ValueError:
        return (0,)


def choose_cli(found: list[tuple[str, bool, tuple[int, ...]]]) -> str | None:
    """The first CLI that builds with BuildKit: it has buildx, or it is older than 23 (DOCKER_BUILDKIT=1 then)."""
    for path, has_buildx, version in found:
        if has_buildx or (0,) < version < (23,):
            return path
    return None


def docker_cli() -> str:
    """FERRY_DOCKER_CLI, else the `docker` first on PATH, else Debian's /usr/bin/docker: the first that has BuildKit."""
    candidates = [os.environ.get("FERRY_DOCKER_CLI"), shutil.which("docker"), "/usr/bin/docker"]
    found = [
        (cli, subprocess.run([cli, "buildx", "version"], capture_output=True).returncode == 0, _client_version(cli))
        for cli in dict.fromkeys(c for c in candidates if c and os.access(c, os.X_OK))
    ]
    chosen = choose_cli(found)
    if chosen is None:
        raise BuildFailed("no docker CLI here builds with BuildKit: install the buildx plugin or Debian's docker.io")
    return chosen


class Docker:
    def __init__(self, cli: str) -> None:
        self.cli = cli
        self.env = dict(os.environ, DOCKER_BUILDKIT="1")

    def run(self, *args: str, check: bool = True, quiet: bool = False, timeout: float | None = None, **kw):
        out = subprocess.DEVNULL if quiet else None
        done = subprocess.run([self.cli, *args], env=self.env, stdout=kw.pop("stdout", out), timeout=timeout, **kw)
        if check and done.returncode != 0:
            raise BuildFailed(f"docker {' '.join(args[:2])} … failed with exit code {done.returncode}")
        return done

    def has(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False, quiet=True, stderr=subprocess.DEVNULL).returncode == 0

    def pulls(self, ref: str) -> bool:
        try:
            return (
                self.run("pull", "-q", ref, check=False, quiet=True, stderr=subprocess.DEVNULL, timeout=120).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False

    def build(self, dockerfile: Path, context: Path, tag: str, args: dict[str, str]) -> None:
        argv = ["build", "--network", "host", "--progress", "plain", "-f", str(dockerfile), "-t", tag]
        for name, value in args.items():
            argv += ["--build-arg", f"{name}={value}"]
        bundle = next((b for b in CA_BUNDLES if os.path.isfile(b)), None)
        if bundle:
            argv += ["--secret", f"id=ca_bundle,src={bundle}"]
        proc = subprocess.Popen(
            [self.cli, *argv, str(context)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        for line in proc.stdout:  # builds run side by side: every line says whose it is
            print(f"[{tag}] {line}", end="", file=sys.stderr, flush=True)
        if proc.wait() != 0:
            raise BuildFailed(f"building {tag} failed with exit code {proc.returncode}")


def _standin_key() -> str:
    recipe = (STANDIN / "Dockerfile.python").read_bytes()
    return f"standin-python-{debian_rootfs.key()}-{hashlib.sha256(recipe).hexdigest()[:12]}"


def standin_base(docker: Docker) -> str:
    """The stand-in base in the engine: loaded from the cache, or built from the Debian tree and cached."""
    if docker.has(STANDIN_BASE):
        return STANDIN_BASE
    name = _standin_key()

    def build(tmp: Path) -> None:
        tree = debian_rootfs.rootfs()
        debian = f"ferry-standin/debian:{debian_rootfs.key().rsplit('-', 1)[-1]}"
        if not docker.has(debian):
            log(f"importing the Debian tree {tree} as {debian}")
            tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(tree), "-c", "."], stdout=subprocess.PIPE)
            docker.run("import", "-", debian, stdin=tar.stdout, quiet=True)
            tar.stdout.close()
            if tar.wait() != 0:
                raise BuildFailed("tar of the Debian tree failed")
        log(f"building {STANDIN_BASE} from Debian's python3")
        docker.build(STANDIN / "Dockerfile.python", STANDIN, STANDIN_BASE, {"DEBIAN_IMAGE": debian})
        with open(tmp / "image.tar", "wb") as out:
            docker.run("save", STANDIN_BASE, stdout=out)

    folder = debian_rootfs.build_atomically(debian_rootfs.cache_root() / name, build)
    if not docker.has(STANDIN_BASE):
        log(f"loading {STANDIN_BASE} from {folder}")
        with open(folder / "image.tar", "rb") as saved:
            docker.run("load", "-q", stdin=saved, quiet=True)
    return STANDIN_BASE


def choose_base(mode: str, official_available) -> str:
    """Which base to build on: "official" or "standin". official_available is asked only when it matters."""
    if mode == "standin":
        return "standin"
    if official_available():
        return "official"
    if mode == "official":
        raise BuildFailed(f"{OFFICIAL_BASE} is neither in the engine nor pullable")
    return "standin"


def base_image(docker: Docker, mode: str) -> str:
    if choose_base(mode, lambda: docker.has(OFFICIAL_BASE) or docker.pulls(OFFICIAL_BASE)) == "official":
        return OFFICIAL_BASE
    if mode == "auto":
        log(f"{OFFICIAL_BASE} cannot be pulled: using a stand-in built from Debian's packages")
    return standin_base(docker)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="backend, importer (default: both)")
    parser.add_argument("--base", choices=["auto", "official", "standin"], default="auto")
    parser.add_argument("--tag-suffix", default="local", help="images are tagged ferry-NAME:SUFFIX")
    args = parser.parse_args()
    unknown = set(args.images) - set(IMAGES)
    if unknown:
        parser.error(f"unknown image {sorted(unknown)[0]}: choose from {', '.join(IMAGES)}")
    try:
        docker = Docker(docker_cli())
        base = base_image(docker, args.base)

        def build(name: str) -> None:
            started = time.monotonic()
            docker.build(ROOT / IMAGES[name], ROOT, f"ferry-{name}:{args.tag_suffix}", {"BASE_IMAGE": base})
            log(f"ferry-{name}:{args.tag_suffix} built on {base} in {time.monotonic() - started:.0f} s")

        # Side by side: each build mostly waits on downloads and on the engine copying layers.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(build, name) for name in dict.fromkeys(args.images or IMAGES)]:
                future.result()
    except (BuildFailed, debian_rootfs.RootfsUnavailable) as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
