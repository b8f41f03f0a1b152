"""Cross-service test helpers: a real `ferry-importer serve` next to a real `ferry-backend serve`, and test archives.

The backend side (process, signed helpers, socket watcher) comes from backend/tests/support.py; this
module adds the importer process wired to that backend the way an operator would wire a lab host.
"""

from __future__ import annotations

import io
import lzma
import os
import secrets
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import httpx

from backend.tests.support import BIN, Backend, free_port, new_secret, process_env

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

    def __init__(self, data_dir: Path, backend: Backend, name: str, docker_host: str):
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
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "ImporterProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(BIN / "ferry-importer"), "serve", "--listen", f"127.0.0.1:{self.port}"],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"importer exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"importer did not start within {timeout:.0f} s: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def outbox(self, job_id: str) -> list[dict]:
        response = httpx.get(f"{self.url}/v1/outbox", params={"job_id": job_id, "limit": 1000},
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        response.raise_for_status()
        return response.json()["messages"]


def images_labelled(client: docker.DockerClient, label: str) -> list[str]:
    return [image["Id"] for image in client.api.images(all=True, filters={"label": f"ferry.itest={label}"})]


def image_present(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.api.inspect_image(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


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
