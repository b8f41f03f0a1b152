#!/usr/bin/env python3
"""Build ferry's images on this machine, with stand-in base images when no registry is reachable (stdlib only).

    python3 deploy/build-images.py [backend] [importer] [nginx] [postgres] [redis] [--stack]
                                   [--base auto|official|standin] [--tag-suffix local]

backend and importer need python:3.11-slim-bookworm, nginx (deploy/Dockerfile.nginx) node:22-bookworm-slim and
nginx:1.27-alpine; compose runs postgres:16-bookworm and redis:7-bookworm as they are. `auto` uses an official
image when the engine has it or can pull it; otherwise a stand-in made from Debian's packages
(deploy/standin/Dockerfile.NAME on a debootstrap tree, scripts/debian_rootfs.py). Each stand-in is kept as a
`docker save` under ${XDG_CACHE_HOME:-~/.cache}/ferry, keyed by the tree and its recipe, so a fresh engine loads
it in seconds. --stack: everything docker-compose.yml needs. The variables that point compose at what was
chosen (FERRY_BASE_IMAGE=…, FERRY_POSTGRES_IMAGE=…) are printed on stdout, one per line, for an env file.
Builds use BuildKit (a `docker` CLI that has buildx, or one older than 23 with DOCKER_BUILDKIT=1),
`--network host` (engines without a bridge network) and the machine's CA bundle as the build secret
`ca_bundle`, so pip and npm inside the build trust what they trust outside it.
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "deploy" / "standin"
OFFICIAL_BASE = "python:3.11-slim-bookworm"
STANDIN_BASE = "ferry-standin/python:3.11-slim-bookworm"
# Each base: the official image, its stand-in, and the compose variable that selects it.
BASES = {
    "python": (OFFICIAL_BASE, STANDIN_BASE, "FERRY_BASE_IMAGE"),
    "node": ("node:22-bookworm-slim", "ferry-standin/node:bookworm", "FERRY_NODE_IMAGE"),
    "nginx": ("nginx:1.27-alpine", "ferry-standin/nginx:bookworm", "FERRY_NGINX_BASE"),
    "postgres": ("postgres:16-bookworm", "ferry-standin/postgres:bookworm", "FERRY_POSTGRES_IMAGE"),
    "redis": ("redis:7-bookworm", "ferry-standin/redis:bookworm", "FERRY_REDIS_IMAGE"),
}
# ferry's images: Dockerfile and {build arg: base}. postgres and redis are bases only (compose runs them).
IMAGES = {
    "backend": ("deploy/Dockerfile.backend", {"BASE_IMAGE": "python"}),
    "importer": ("deploy/Dockerfile.importer", {"BASE_IMAGE": "python"}),
    "nginx": ("deploy/Dockerfile.nginx", {"NODE_IMAGE": "node", "NGINX_IMAGE": "nginx"}),
}
SERVICES = ("postgres", "redis")
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")

_spec = importlib.util.spec_from_file_location("ferry_debian_rootfs_script", ROOT / "scripts" / "debian_rootfs.py")
debian_rootfs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(debian_rootfs)  # type: ignore[union-attr]
_spec = importlib.util.spec_from_file_location("ferry_image_cache", ROOT / "deploy" / "image_cache.py")
image_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(image_cache)  # type: ignore[union-attr]


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
        if not kw.get("capture_output"):
            kw["stdout"] = kw.get("stdout", out)
        done = subprocess.run([self.cli, *args], env=self.env, timeout=timeout, **kw)
        if check and done.returncode != 0:
            raise BuildFailed(f"docker {' '.join(args[:2])} … failed with exit code {done.returncode}")
        return done

    def image_id(self, ref: str) -> str:
        done = self.run("image", "inspect", "--format", "{{.Id}}", ref, capture_output=True, text=True)
        return done.stdout.strip()

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


def standin_key(name: str) -> str:
    """The cache folder's name: the Debian tree's key and every file of the recipe (Dockerfile.NAME, NAME-*)."""
    recipe = hashlib.sha256()
    for path in [STANDIN / f"Dockerfile.{name}", *sorted(STANDIN.glob(f"{name}-*"))]:
        recipe.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"standin-{name}-{debian_rootfs.key()}-{recipe.hexdigest()[:12]}"


_debian_lock = threading.Lock()


def debian_image(docker: Docker) -> str:
    """The cached Debian tree imported into the engine (once, whatever number of stand-ins build on it)."""
    with _debian_lock:
        tree = debian_rootfs.rootfs()
        debian = f"ferry-standin/debian:{debian_rootfs.key().rsplit('-', 1)[-1]}"
        if not docker.has(debian):
            log(f"importing the Debian tree {tree} as {debian}")
            tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(tree), "-c", "."], stdout=subprocess.PIPE)
            docker.run("import", "-", debian, stdin=tar.stdout, quiet=True)
            tar.stdout.close()
            if tar.wait() != 0:
                raise BuildFailed("tar of the Debian tree failed")
        return debian


def standin(docker: Docker, name: str, load: bool = True) -> str:
    """The stand-in for base NAME: built on the Debian tree and cached when missing, loaded into the engine
    from the cache unless `load` is false (a base only needed when one of ferry's images is built)."""
    ref = BASES[name][1]
    if docker.has(ref):
        return ref

    def build(tmp: Path) -> None:
        started = time.monotonic()
        log(f"building {ref} from Debian's packages")
        docker.build(STANDIN / f"Dockerfile.{name}", STANDIN, ref, {"DEBIAN_IMAGE": debian_image(docker)})
        with open(tmp / "image.tar", "wb") as out:
            docker.run("save", ref, stdout=out)
        log(f"{ref} built and saved in {time.monotonic() - started:.0f} s")

    folder = debian_rootfs.build_atomically(debian_rootfs.cache_root() / standin_key(name), build)
    if load and not docker.has(ref):
        log(f"loading {ref} from {folder}")
        with open(folder / "image.tar", "rb") as saved:
            docker.run("load", "-q", stdin=saved, quiet=True)
    return ref


def base_identity(docker: Docker, ref: str) -> str:
    """What an image's cache key records of its base: a stand-in's recipe key (known without loading it),
    an official image's ID."""
    for name, (_official, standin_ref, _variable) in BASES.items():
        if ref == standin_ref:
            return standin_key(name)
    return docker.image_id(ref)


def choose_base(mode: str, official_available) -> str:
    """Which base to build on: "official" or "standin". official_available is asked only when it matters."""
    if mode == "standin":
        return "standin"
    if official_available():
        return "official"
    if mode == "official":
        raise BuildFailed(f"{OFFICIAL_BASE} is neither in the engine nor pullable")
    return "standin"


def base_image(docker: Docker, mode: str, name: str, load: bool = True) -> str:
    official = BASES[name][0]
    if choose_base(mode, lambda: docker.has(official) or docker.pulls(official)) == "official":
        return official
    if name == "node":  # only the page's build stage needs node: without the official image it comes prebuilt
        log(f"{official} is not used: nginx's image copies the page built on this machine (PAGE=prebuilt)")
        return BASES[name][1]
    if mode == "auto":
        log(f"{official} cannot be pulled: using a stand-in built from Debian's packages")
    return standin(docker, name, load)


def image_args(name: str, refs: dict[str, str]) -> dict[str, str]:
    """The build arguments of one of ferry's images. Where the official node image cannot be had, nginx's page
    is copied prebuilt (frontend-bridge/dist, built here by `make setup-js`) instead of building a node stand-in
    only to run `npm run build` in it again (about 2.5 minutes on a fresh machine)."""
    args = {arg: refs[base] for arg, base in IMAGES[name][1].items()}
    if name == "nginx" and args["NODE_IMAGE"] == BASES["node"][1]:
        del args["NODE_IMAGE"]
        args["PAGE"] = "prebuilt"
    return args


def page_built() -> None:
    """frontend-bridge/dist, built on this machine (npm run build) when it is not there yet."""
    if (ROOT / "frontend-bridge" / "dist" / "index.html").exists():
        return
    if shutil.which("npm") is None:
        raise BuildFailed("no node image and no npm here: run `make setup-js` to build frontend-bridge/dist first")
    subprocess.run(["npm", "run", "--silent", "build"], cwd=ROOT / "frontend-bridge", check=True)


def build_ferry_image(docker: Docker, name: str, build_args: dict[str, str], suffix: str) -> str:
    """ferry-NAME:SUFFIX, loaded from the cache when the same Dockerfile, context, arguments and bases built it
    before (on this machine, in any clone), else built and saved there."""
    started = time.monotonic()
    dockerfile = ROOT / IMAGES[name][0]
    if build_args.get("PAGE") == "prebuilt":
        page_built()
    base_args = {arg: ref for arg, ref in build_args.items() if arg in IMAGES[name][1]}
    bases = [base_identity(docker, ref) for ref in base_args.values()]
    key = image_cache.digest(ROOT, dockerfile, build_args, bases)
    cache_ref, tag = f"ferry-cache/{name}:{key}", f"ferry-{name}:{suffix}"
    cache = debian_rootfs.cache_root()

    def build() -> None:
        for base in IMAGES[name][1].values():
            if BASES[base][1] in build_args.values():  # a stand-in: loaded only now that it is needed
                standin(docker, base)
        docker.build(dockerfile, ROOT, cache_ref, build_args)

    built = image_cache.cached(docker, cache_ref, cache / f"image-{name}-{key}", build, debian_rootfs.build_atomically)
    docker.run("tag", cache_ref, tag)
    if built:
        image_cache.prune(cache, f"image-{name}-")
    log(f"{tag} {'built' if built else 'from the cache'} in {time.monotonic() - started:.0f} s")
    return tag


def wanted(images: list[str], stack: bool) -> tuple[list[str], list[str]]:
    """(ferry images to build, bases they and compose need), in a stable order."""
    chosen = list(dict.fromkeys(images)) if images else []
    if stack:
        chosen = list(dict.fromkeys([*chosen, *IMAGES, *SERVICES]))
    elif not chosen:
        chosen = ["backend", "importer"]
    builds = [name for name in chosen if name in IMAGES]
    bases = [base for name in builds for base in IMAGES[name][1].values()]
    bases += [name for name in chosen if name in SERVICES]
    return builds, list(dict.fromkeys(bases))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choices = [*IMAGES, *SERVICES]
    parser.add_argument("images", nargs="*", metavar="IMAGE", help=f"{', '.join(choices)} (default: backend importer)")
    parser.add_argument("--stack", action="store_true", help="everything docker-compose.yml runs")
    parser.add_argument("--base", choices=["auto", "official", "standin"], default="auto")
    parser.add_argument("--tag-suffix", default="local", help="images are tagged ferry-NAME:SUFFIX")
    args = parser.parse_args()
    unknown = set(args.images) - set(choices)
    if unknown:
        parser.error(f"unknown image {sorted(unknown)[0]}: choose from {', '.join(choices)}")
    builds, needed = wanted(args.images, args.stack)
    try:
        docker = Docker(docker_cli())
        # Two at a time: each mostly waits on downloads and on the engine copying layers.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            # Bases of ferry's images are loaded only when an image has to be built; the services always are.
            refs = dict(
                zip(needed, pool.map(lambda name: base_image(docker, args.base, name, name in SERVICES), needed))
            )

            def build(name: str) -> None:
                build_ferry_image(docker, name, image_args(name, refs), args.tag_suffix)

            for future in [pool.submit(build, name) for name in builds]:
                future.result()
    except (BuildFailed, debian_rootfs.RootfsUnavailable) as exc:
        log(str(exc))
        return 1
    prebuilt = "nginx" in builds and image_args("nginx", refs).get("PAGE") == "prebuilt"
    for name, ref in refs.items():
        if not (prebuilt and name == "node"):  # the page was copied in: compose needs no node image
            print(f"{BASES[name][2]}={ref}")
    if prebuilt:
        print("FERRY_PAGE=prebuilt")
    print(f"FERRY_IMAGE_TAG={args.tag_suffix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
