"""One lab for the cross-service tests: a backend, one importer host on the real engine, and an uploaded archive."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker
import httpx
import pytest
from tusclient import client as tus_client

from backend.tests.support import Backend, SocketWatcher
from tests.integration.support import ImporterProcess, remove_images, rootfs_archive

ARCHIVE_MB = 192  # big enough that an import takes seconds (a window to kill or cancel in), small on disk


@dataclass
class Lab:
    backend: Backend
    importer: ImporterProcess
    engine: docker.DockerClient
    archive: Path
    upload_id: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    refs: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.importer.name

    def image(self, stem: str) -> str:
        ref = f"ferry-itest/{stem}-{self.token}:1"
        self.refs.append(ref)
        return ref

    def label(self, stem: str) -> str:
        self.labels.append(f"{self.token}-{stem}")
        return self.labels[-1]

    async def start_import(self, image: str, label: str) -> dict:
        async with self.backend.client(self.backend.token("operator")) as http:
            response = await http.post(
                "/api/imports",
                json={
                    "upload_id": self.upload_id,
                    "hosts": [self.host],
                    "image": image,
                    "format": "import",
                    "changes": [f"LABEL ferry.itest={label}"],
                },
            )
        assert response.status_code == 202, response.text
        return response.json()["jobs"][0]

    async def snapshot(self, job_id: str) -> dict:
        async with self.backend.client(self.backend.token("viewer")) as http:
            return (await http.get(f"/api/imports/{job_id}")).json()

    async def logged_seqs(self, job_id: str) -> list[int]:
        async with self.backend.client(self.backend.token("viewer")) as http:
            return [e["seq"] for e in (await http.get(f"/api/imports/{job_id}/events")).json()]

    async def watch(self, job_id: str, after_seq: int = 0) -> SocketWatcher:
        watcher = await SocketWatcher(self.backend, self.backend.token("viewer")).connect()
        ack = await watcher.subscribe(job_id, after_seq)
        assert ack["ok"], ack
        return watcher


def tus_upload(backend: Backend, path: Path) -> str:
    client = tus_client.TusClient(
        backend.url + "/api/uploads/", headers={"Authorization": f"Bearer {backend.token('operator')}"}
    )
    uploader = client.uploader(str(path), chunk_size=32 * 1024, metadata={"filename": path.name})
    uploader.upload()
    return uploader.url.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture(scope="session")
def lab(docker_host, tmp_path_factory):
    base = tmp_path_factory.mktemp("lab")
    backend = Backend(base / "backend", env_extra={"FERRY_HOST_STALE_S": "120"}).launch()
    archive = rootfs_archive(base / "rootfs.tar.xz", ARCHIVE_MB, uuid.uuid4().hex)  # while the backend starts
    backend.wait_ready()
    importer = ImporterProcess(base / "importer", backend, "itest-" + uuid.uuid4().hex[:6], docker_host).start()
    engine = docker.DockerClient(base_url=docker_host)
    made = None
    try:
        importer.register(backend)
        upload_id = tus_upload(backend, archive)
        info = httpx.get(
            f"{backend.url}/api/uploads/{upload_id}",
            timeout=30,
            headers={"Authorization": f"Bearer {backend.token('operator')}"},
        ).json()
        assert info["complete"] and info["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
        made = Lab(backend, importer, engine, archive, upload_id)
        yield made
    finally:
        importer.stop()
        backend.stop()
        if made is not None:
            remove_images(engine, made.refs, made.labels)
        engine.close()
