"""`ferry-importer serve` as a real uvicorn subprocess on a free 127.0.0.1 port, for the service tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import httpx

from importer.tests.service_support import SECRET, TOKEN, RangeFileServer, WebhookReceiver, free_port, wait_until
from tests.support.process import spawn, wait_healthy

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

    def start(self, timeout: float = 60.0) -> ImporterProcess:
        self.proc = spawn(
            [str(BIN), "serve", "--listen", f"127.0.0.1:{self.port}", "--log-level", "info"], self.env, self.log_path
        )
        wait_healthy(self.proc, self.base_url, self.log_path, "importer", timeout)
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
            raise AssertionError(f"importer did not stop on SIGTERM within {timeout}s:\n{self.log()}") from None

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
        return wait_until(
            lambda: (j := self.job(job_id))["state"] in states and j,
            timeout,
            interval=0.1,
            what=f"job {job_id} to reach {states}",
        )

    def wait_bytes(self, job_id: str, minimum: int = 1, timeout: float = 60.0) -> dict:
        return wait_until(
            lambda: (j := self.job(job_id))["bytes_done"] >= minimum and j,
            timeout,
            interval=0.05,
            what=f"job {job_id} to stream bytes",
        )

    def outbox(self, job_id: str | None = None) -> dict:
        params = {"job_id": job_id} if job_id else {}
        return self.client.get("/v1/outbox", params={**params, "limit": 1000}).json()


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


class Lab:
    """One test's world: archive roots, a Range file server, a webhook receiver, importer processes."""

    def __init__(self, base: Path, docker_host: str):
        self.base = base
        self.docker_host = docker_host
        self.roots = base / "roots"
        self.roots.mkdir(parents=True)
        self.data_dir = base / "data"
        self.files = RangeFileServer(self.roots).start()
        self.receiver = WebhookReceiver()
        self.token = uuid.uuid4().hex[:12]
        self.images: list[str] = []
        self.processes: list[ImporterProcess] = []

    def importer(self, **settings: object) -> ImporterProcess:
        settings.setdefault("allowed_roots", self.roots)
        settings.setdefault("allowed_url_prefixes", self.files.url(""))
        process = ImporterProcess(self.data_dir, self.docker_host, **settings)
        self.processes.append(process)
        return process.start()

    def image(self, stem: str) -> str:
        ref = f"ferry-test/{stem}-{self.token}:1"
        self.images.append(ref)
        return ref

    def job(self, image: str, source: dict, **extra) -> dict:
        """A request body: labelled with this test's token so leftovers can be found."""
        return {
            "job_id": f"job-{uuid.uuid4().hex[:10]}",
            "image": image,
            "source": source,
            "changes": [f"LABEL ferry.test={self.token}"],
            "callback_url": self.receiver.url("/api/callbacks/lab1"),
            **extra,
        }

    def spool_entries(self) -> list[str]:
        spool = self.data_dir / "spool"
        return sorted(p.name for p in spool.iterdir()) if spool.exists() else []

    def close(self, client: docker.DockerClient) -> None:
        for process in self.processes:
            try:
                process.close()
            except AssertionError:
                pass
        self.files.stop()
        self.receiver.stop()
        remove_images(client, self.images, self.token)


def assert_seq_increasing(events: list[dict]) -> None:
    seqs = [e["data"]["seq"] for e in events]
    assert seqs == sorted(set(seqs)), f"seq not strictly increasing: {seqs}"
    assert seqs[0] == 1, f"first seq is {seqs[0]}"
