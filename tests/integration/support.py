"""Cross-service test helpers: a real `ferry-importer serve` next to a real `ferry-backend serve`, and test archives.

The backend side (process, signed helpers, socket watcher) comes from backend/tests/support.py; this
module adds the importer process wired to that backend the way an operator would wire a lab host.
"""

from __future__ import annotations

import io
import lzma
import os
import secrets
import subprocess
import tarfile
from pathlib import Path

import docker
import httpx

from backend.tests.support import BIN, Backend, new_secret, process_env
from tests.support.process import free_port, spawn, tail, terminate, wait_healthy

BLOCK = 64 * 1024


def rootfs_archive(path: Path, megabytes: int, marker: str) -> Path:
    """A rootfs .tar.xz that unpacks to `megabytes` MB (repeated random blocks: small on disk, real work to import)."""
    block = os.urandom(BLOCK)
    chunk = block * (16 * 1024 * 1024 // BLOCK)
    with lzma.open(path, "wb", preset=0) as xz, tarfile.open(fileobj=xz, mode="w|") as tar:
        release = f"NAME=ferry-integration\nMARKER={marker}\n".encode()
        info = tarfile.TarInfo("etc/os-release")
        info.size = len(release)
        tar.addfile(info, io.BytesIO(release))
        for index in range(max(1, megabytes // 16)):
            info = tarfile.TarInfo(f"usr/lib/ferry/blob{index:03d}.bin")
            info.size = len(chunk)
            tar.addfile(info, io.BytesIO(chunk))
    return path


class ImporterProcess:
    """`ferry-importer serve` on a free port, pulling only from the backend and calling back only to it."""

    def __init__(self, data_dir: Path, backend: Backend, name: str, docker_host: str, **settings: object):
        self.data_dir = data_dir
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "itest-" + secrets.token_hex(16)
        self.secret = new_secret()
        self.log_path = data_dir / "importer.log"
        self.env = {
            **process_env(),
            "DOCKER_HOST": docker_host,
            "FERRY_IMPORTER_TOKEN": self.token,
            "FERRY_IMPORTER_WEBHOOK_SECRET": self.secret,
            "FERRY_IMPORTER_NAME": name,
            "FERRY_IMPORTER_DATA_DIR": str(data_dir),
            "FERRY_IMPORTER_ALLOWED_URL_PREFIXES": f"{backend.url}/api/uploads",
            "FERRY_IMPORTER_CALLBACK_URL_PREFIXES": f"{backend.url}/api/callbacks",
            "FERRY_IMPORTER_HEARTBEAT_URL": f"{backend.url}/api/callbacks/{name}",  # alive from the start
            "FERRY_IMPORTER_HEARTBEAT_S": "2",
            "FERRY_IMPORTER_RETRY_BASE_S": "0.2",
            "FERRY_IMPORTER_RETRY_MAX_S": "1",
            "FERRY_IMPORTER_DELIVERY_TIMEOUT_S": "3",
        }
        self.env.update({f"FERRY_IMPORTER_{key.upper()}": str(value) for key, value in settings.items()})
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> ImporterProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(
            [str(BIN / "ferry-importer"), "serve", "--listen", f"127.0.0.1:{self.port}"], self.env, self.log_path
        )
        wait_healthy(self.proc, self.url, self.log_path, "importer", timeout)
        return self

    def register(self, backend: Backend) -> None:
        """Add this importer to the backend as a host (the admin's POST /api/hosts)."""
        response = httpx.post(
            f"{backend.url}/api/hosts",
            headers={"Authorization": f"Bearer {backend.admin_token}"},
            timeout=30,
            json={"name": self.name, "url": self.url, "token": self.token, "webhook_secret": self.secret},
        )
        assert response.status_code == 201, response.text

    def stop(self) -> None:
        terminate(self.proc, timeout=30)

    def log(self) -> str:
        return tail(self.log_path)

    def outbox(self, job_id: str) -> list[dict]:
        response = httpx.get(
            f"{self.url}/v1/outbox",
            params={"job_id": job_id, "limit": 1000},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["messages"]


def images_labelled(client: docker.DockerClient, label: str) -> list[str]:
    return [image["Id"] for image in client.api.images(all=True, filters={"label": f"ferry.itest={label}"})]


def remove_images(client: docker.DockerClient, refs: list[str], labels: list[str]) -> None:
    """Every image these tests made, by tag and by label (an untagged leftover has only its label)."""
    for ref in refs:
        try:
            client.api.remove_image(ref, force=True)
        except docker.errors.APIError:
            pass
    for label in labels:
        for image_id in images_labelled(client, label):
            try:
                client.api.remove_image(image_id, force=True)
            except docker.errors.APIError:
                pass
