"""`ferry-importer serve` as a real uvicorn subprocess on a free 127.0.0.1 port, for the service tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import httpx

from importer.tests.service_support import SECRET, TOKEN, free_port, wait_until

BIN = Path(sys.executable).with_name("ferry-importer")


class ImporterProcess:
    def __init__(self, data_dir: Path, docker_host: str, name: str = "lab1", **settings: object):
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"importer-{self.port}.log"
        self.env = {
            **os.environ,
            "DOCKER_HOST": docker_host,
            "FERRY_IMPORTER_TOKEN": TOKEN,
            "FERRY_IMPORTER_WEBHOOK_SECRET": SECRET,
            "FERRY_IMPORTER_NAME": name,
            "FERRY_IMPORTER_DATA_DIR": str(data_dir),
            "FERRY_IMPORTER_RETRY_BASE_S": "0.1",
            "FERRY_IMPORTER_RETRY_MAX_S": "0.5",
            "FERRY_IMPORTER_DELIVERY_TIMEOUT_S": "2",
            "FERRY_IMPORTER_HEARTBEAT_S": "30",
        }
        for key, value in settings.items():
            self.env[f"FERRY_IMPORTER_{key.upper()}"] = str(value)
        self.proc: subprocess.Popen | None = None
        self.client = httpx.Client(base_url=self.base_url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)

    def start(self, timeout: float = 60.0) -> "ImporterProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--listen", f"127.0.0.1:{self.port}", "--log-level", "info"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"importer exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout, interval=0.1, what="the importer to answer /healthz")
        return self

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait (graceful shutdown), SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"importer did not stop on SIGTERM within {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a power cut of the process."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.client.close()

    # -- API helpers ---------------------------------------------------------------------------

    def submit(self, **body) -> httpx.Response:
        body.setdefault("job_id", f"job-{uuid.uuid4().hex[:10]}")
        return self.client.post("/v1/imports", json=body)

    def job(self, job_id: str) -> dict:
        response = self.client.get(f"/v1/imports/{job_id}")
        response.raise_for_status()
        return response.json()

    def wait_state(self, job_id: str, states: set[str], timeout: float = 90.0) -> dict:
        return wait_until(lambda: (j := self.job(job_id))["state"] in states and j, timeout, interval=0.1,
                          what=f"job {job_id} to reach {states}")

    def wait_bytes(self, job_id: str, minimum: int = 1, timeout: float = 60.0) -> dict:
        return wait_until(lambda: (j := self.job(job_id))["bytes_done"] >= minimum and j, timeout, interval=0.05,
                          what=f"job {job_id} to stream bytes")

    def outbox(self, job_id: str | None = None) -> dict:
        params = {"job_id": job_id} if job_id else {}
        return self.client.get("/v1/outbox", params={**params, "limit": 1000}).json()


def image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.api.inspect_image(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def remove_images(client: docker.DockerClient, refs: list[str], label_token: str | None = None) -> None:
    for ref in refs:
        try:
            client.api.remove_image(ref, force=True)
        except docker.errors.APIError:
            pass
    if label_token:
        for image in client.api.images(all=True, filters={"label": f"ferry.test={label_token}"}):
            try:
                client.api.remove_image(image["Id"], force=True)
            except docker.errors.APIError:
                pass


def labelled(client: docker.DockerClient, label_token: str) -> list[str]:
    return [i["Id"] for i in client.api.images(all=True, filters={"label": f"ferry.test={label_token}"})]


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    return wait_until(predicate, timeout, interval=0.1, what=what)


def seconds_since(start: float) -> float:
    return time.monotonic() - start
