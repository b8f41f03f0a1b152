"""The whole of ferry for one test module: a real backend, a real importer on the real engine, and
the slow link between them; plus the archives the tests upload.

The backend and importer launchers are the services' own test helpers (backend/tests/support.py,
importer/tests/service_process.py); this module only wires them together the way a lab is wired:
the importer reaches the backend through a slow `Relay` (pull links, callbacks and heartbeats all
use FERRY_PUBLIC_URL), the browser talks to the backend directly.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import tarfile
import uuid
from pathlib import Path

import docker
import httpx

from backend.tests.support import Backend
from importer.tests.service_process import ImporterProcess, remove_images
from importer.tests.service_support import SECRET, TOKEN
from tests.e2e.relay import Relay
from tests.support.images import image_present

REPO = Path(__file__).resolve().parents[2]
WEB_DIR = REPO / "frontend-bridge" / "dist"
HOST = "lab1"


class Stack:
    def __init__(self, base: Path, docker_host: str, rate_bps: float):
        self.base = base
        self.docker_host = docker_host
        self.token = uuid.uuid4().hex[:10]  # in every image name this stack makes, to find leftovers
        self.backend = Backend(base / "backend", env_extra={"FERRY_WEB_DIR": str(WEB_DIR)})
        self.link = Relay(self.backend.port, rate_bps=rate_bps, hold_s=60)
        # Importers reach the backend through the link: pull links and callback URLs carry this URL.
        self.backend.env_extra["FERRY_PUBLIC_URL"] = self.link.url
        self.importer: ImporterProcess | None = None
        self.images: list[str] = []
        self.proxies: list[Relay] = []
        self.engine = docker.DockerClient(base_url=docker_host)

    def start(self) -> Stack:
        self.link.start()
        self.backend.launch()
        public = self.link.url
        self.importer = ImporterProcess(
            self.base / "importer",
            self.docker_host,
            name=HOST,
            allowed_url_prefixes=f"{public}/api/uploads/",
            callback_url_prefixes=f"{public}/api/callbacks/",
            heartbeat_url=f"{public}/api/callbacks/{HOST}",
            heartbeat_s=2,
        )
        (self.base / "importer").mkdir(parents=True, exist_ok=True)
        self.importer.start()
        self.backend.wait_ready()
        response = httpx.post(
            self.backend.url + "/api/hosts",
            json={"name": HOST, "url": self.importer.base_url, "token": TOKEN, "webhook_secret": SECRET},
            headers={"Authorization": f"Bearer {self.backend.admin_token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return self

    def close(self) -> None:
        try:
            if self.importer is not None:
                self.importer.close()
        finally:
            self.backend.stop()
            for relay in [self.link, *self.proxies]:
                relay.stop()
            remove_images(self.engine, self.images)
            self.engine.close()

    # -- what the tests do to it -----------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.backend.url

    def proxy(self, **options) -> Relay:
        """A relay in front of the backend for the browser (e.g. one that refuses websocket upgrades)."""
        relay = Relay(self.backend.port, **options).start()
        self.proxies.append(relay)
        return relay

    def operator_token(self) -> str:
        return self.backend.token("operator")

    def image(self, stem: str) -> str:
        """A unique image name, removed from the engine when the stack closes."""
        ref = f"ferry-e2e/{stem}-{self.token}:1"
        self.images.append(ref)
        return ref

    def stop_backend(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL: no shutdown code runs, like a crash; SIGTERM: a clean stop."""
        self.backend.stop(sig)

    def start_backend(self) -> None:
        """Start it again on the same port and DATA_DIR."""
        self.backend.start()

    def job(self, job_id: str) -> dict:
        response = httpx.get(
            f"{self.url}/api/imports/{job_id}",
            headers={"Authorization": f"Bearer {self.backend.admin_token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def events(self, job_id: str) -> list[dict]:
        response = httpx.get(
            f"{self.url}/api/imports/{job_id}/events",
            headers={"Authorization": f"Bearer {self.backend.admin_token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def remove_image(self, ref: str) -> None:
        self.engine.api.remove_image(ref, force=True)

    def image_present(self, ref: str) -> bool:
        return image_present(self.engine, ref)

    def logs(self) -> str:
        importer = self.importer.log()[-4000:] if self.importer else ""
        return f"--- backend log ---\n{self.backend.log()}\n--- importer log ---\n{importer}"


def rootfs_archive(path: Path, size: int) -> Path:
    """A root file system tarball (what `docker import` takes), gzip-compressed, `size` bytes of random
    file content in 1 MiB files: incompressible, so the archive is about `size` bytes and every
    archive is new to the importer (no "already present" shortcut)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, mode in (("etc", 0o755), ("opt", 0o755), ("opt/lab", 0o755)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        release = b"NAME=ferry-e2e\n"
        info = tarfile.TarInfo("etc/os-release")
        info.size = len(release)
        tar.addfile(info, io.BytesIO(release))
        left, index = size, 0
        while left > 0:
            chunk = os.urandom(min(left, 1 << 20))
            info = tarfile.TarInfo(f"opt/lab/blob-{index:03d}.bin")
            info.size = len(chunk)
            tar.addfile(info, io.BytesIO(chunk))
            left -= len(chunk)
            index += 1
    path.write_bytes(gzip.compress(raw.getvalue(), compresslevel=1))
    return path


def corrupt_archive(path: Path, size: int = 2 << 20) -> Path:
    """Starts like an xz stream (the magic bytes), then garbage: the importer must refuse it."""
    path.write_bytes(b"\xfd7zXZ\x00\x00\x04" + os.urandom(size))
    return path
