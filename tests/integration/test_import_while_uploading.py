"""An import started while its upload still arrives, on real processes and the real engine: the bytes enter the
engine before the upload ends, a pause inside the idle limit continues the same job, an upload that stops fails
`upload_abandoned`, a wrong declared sha256 fails `source_mismatch`, and removing the upload cancels the job.
Nothing is left in the engine by a job that did not succeed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker
import httpx
import pytest

from backend.tests.support import Backend
from tests.integration.support import ImporterProcess, images_labelled, remove_images
from tests.support.images import image_present

IDLE_S = 6  # FERRY_UPLOAD_IDLE_S of this lab: an upload that lands nothing this long is abandoned
PIECE = 512 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


def rootfs_tar(megabytes: int, marker: str) -> bytes:
    """An uncompressed rootfs tar of random bytes: what is uploaded is what the engine takes."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        release = f"NAME=ferry-arriving\nMARKER={marker}\n".encode()
        info = tarfile.TarInfo("etc/os-release")
        info.size = len(release)
        tar.addfile(info, io.BytesIO(release))
        for index in range(megabytes):
            info = tarfile.TarInfo(f"usr/lib/ferry/blob{index:03d}.bin")
            info.size = 1024 * 1024
            tar.addfile(info, io.BytesIO(os.urandom(info.size)))
    return out.getvalue()


@dataclass
class ArrivingLab:
    backend: Backend
    importer: ImporterProcess
    engine: docker.DockerClient
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    refs: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def names(self, stem: str) -> tuple[str, str]:
        self.refs.append(f"ferry-itest/{stem}-{self.token}:1")
        self.labels.append(f"{self.token}-{stem}")
        return self.refs[-1], self.labels[-1]

    def http(self) -> httpx.AsyncClient:
        return self.backend.client(self.backend.token("operator"))

    async def create(self, size: int, sha256: str | None = None) -> str:
        headers = {**TUS, "Upload-Length": str(size)}
        if sha256:
            headers["Upload-Metadata"] = "sha256 " + base64.b64encode(sha256.encode()).decode()
        async with self.http() as http:
            response = await http.post("/api/uploads/", headers=headers)
        assert response.status_code == 201, response.text
        return response.headers["location"].rsplit("/", 1)[-1]

    async def send(self, upload_id: str, data: bytes, start: int, stop: int, pause_s: float = 0.05) -> int:
        """PATCH data[start:stop] in pieces, as a slow link would; returns the last status."""
        status = 0
        async with self.http() as http:
            for at in range(start, stop, PIECE):
                piece = data[at : min(stop, at + PIECE)]
                response = await http.patch(
                    f"/api/uploads/{upload_id}",
                    content=piece,
                    headers={**TUS, "Upload-Offset": str(at), "Content-Type": "application/offset+octet-stream"},
                )
                status = response.status_code
                assert status in (204, 460), response.text
                await asyncio.sleep(pause_s)
        return status

    async def start_import(self, upload_id: str, image: str, label: str) -> str:
        async with self.http() as http:
            response = await http.post(
                "/api/imports",
                json={
                    "upload_id": upload_id,
                    "hosts": [self.importer.name],
                    "image": image,
                    "format": "import",
                    "changes": [f"LABEL ferry.itest={label}"],
                },
            )
        assert response.status_code == 202, response.text
        return response.json()["jobs"][0]["id"]

    async def events(self, job_id: str) -> list[dict]:
        async with self.http() as http:
            return [e["data"] for e in (await http.get(f"/api/imports/{job_id}/events")).json()]

    async def wait_events(self, job_id: str, predicate, timeout: float = 120) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            events = await self.events(job_id)
            if predicate(events):
                return events
            assert time.monotonic() < deadline, f"timed out; events: {[(e['phase'], e['bytes_done']) for e in events]}"
            await asyncio.sleep(0.2)


def ended(events: list[dict]) -> bool:
    return bool(events) and events[-1]["state"] in ("succeeded", "failed", "canceled")


@pytest.fixture(scope="module")
def arriving(docker_host, tmp_path_factory):
    base: Path = tmp_path_factory.mktemp("arriving")
    backend = Backend(base / "backend", env_extra={"FERRY_UPLOAD_IDLE_S": str(IDLE_S)}).launch().wait_ready()
    importer = ImporterProcess(base / "importer", backend, "arrive-" + uuid.uuid4().hex[:6], docker_host).start()
    engine = docker.DockerClient(base_url=docker_host)
    made = ArrivingLab(backend, importer, engine)
    try:
        importer.register(backend)
        yield made
    finally:
        importer.stop()
        backend.stop()
        remove_images(engine, made.refs, made.labels)
        engine.close()


async def test_an_import_started_mid_upload_takes_bytes_as_they_land_and_survives_a_pause(arriving):
    data = rootfs_tar(8, uuid.uuid4().hex)
    image, label = arriving.names("pipelined")
    upload_id = await arriving.create(len(data))
    first = 4 * 1024 * 1024
    await arriving.send(upload_id, data, 0, first)
    job_id = await arriving.start_import(upload_id, image, label)
    events = await arriving.wait_events(
        job_id,
        lambda ev: any(e["phase"] == "waiting_for_upload" for e in ev) and any(e["bytes_done"] > 0 for e in ev),
    )  # the engine took bytes before the upload ended, and the job says it waits for the rest
    waiting = next(e for e in events if e["phase"] == "waiting_for_upload")
    assert waiting["bytes_available"] == first and waiting["bytes_total"] == len(data)
    assert max(e["bytes_done"] for e in events) <= first
    async with arriving.http() as http:
        snapshot = (await http.get(f"/api/imports/{job_id}")).json()
    assert snapshot["phase"] == "waiting_for_upload" and snapshot["bytes_available"] == first, snapshot
    await asyncio.sleep(IDLE_S / 3)  # a pause inside the idle limit: the same job carries on
    await arriving.send(upload_id, data, first, len(data))
    events = await arriving.wait_events(job_id, ended)
    assert events[-1]["state"] == "succeeded", events[-1]["error"]
    assert len({e["job_id"] for e in events}) == 1 and events[-1]["bytes_done"] == len(data)  # the same job went on
    assert image_present(arriving.engine, image)
    assert arriving.engine.api.inspect_image(image)["Config"]["Labels"]["ferry.itest"] == label


async def test_an_upload_that_stops_fails_its_import_upload_abandoned_and_leaves_nothing(arriving):
    data = rootfs_tar(4, uuid.uuid4().hex)
    image, label = arriving.names("abandoned")
    upload_id = await arriving.create(len(data))
    await arriving.send(upload_id, data, 0, len(data) // 2)
    job_id = await arriving.start_import(upload_id, image, label)
    events = await arriving.wait_events(job_id, ended, timeout=IDLE_S * 10)
    assert events[-1]["state"] == "failed" and events[-1]["error"]["code"] == "upload_abandoned", events[-1]
    assert not image_present(arriving.engine, image) and images_labelled(arriving.engine, label) == []
    log = arriving.backend.log_path.read_text()  # the stream broken off on purpose is one line, not a traceback
    assert f"the content stream of upload {upload_id} ended: the upload was abandoned" in log
    assert "Exception in ASGI application" not in log


async def test_a_wrong_declared_sha256_fails_source_mismatch_and_leaves_nothing(arriving):
    data = rootfs_tar(3, uuid.uuid4().hex)
    image, label = arriving.names("mismatch")
    upload_id = await arriving.create(len(data), sha256=hashlib.sha256(b"something else").hexdigest())
    await arriving.send(upload_id, data, 0, PIECE)
    job_id = await arriving.start_import(upload_id, image, label)
    assert await arriving.send(upload_id, data, PIECE, len(data)) == 460  # the backend's own check
    events = await arriving.wait_events(job_id, ended)
    assert events[-1]["state"] == "failed" and events[-1]["error"]["code"] == "source_mismatch", events[-1]
    assert not image_present(arriving.engine, image) and images_labelled(arriving.engine, label) == []


async def test_removing_the_upload_cancels_its_import_and_leaves_nothing(arriving):
    data = rootfs_tar(3, uuid.uuid4().hex)
    image, label = arriving.names("removed")
    upload_id = await arriving.create(len(data))
    await arriving.send(upload_id, data, 0, PIECE * 2)
    job_id = await arriving.start_import(upload_id, image, label)
    await arriving.wait_events(job_id, lambda ev: any(e["phase"] == "waiting_for_upload" for e in ev))
    async with arriving.http() as http:
        assert (await http.delete(f"/api/uploads/{upload_id}", headers=TUS)).status_code == 204
    events = await arriving.wait_events(job_id, ended)
    assert events[-1]["state"] == "canceled", events[-1]
    assert not image_present(arriving.engine, image) and images_labelled(arriving.engine, label) == []


async def test_a_declared_sha256_lets_an_arriving_duplicate_take_the_fast_path(arriving):
    """The same archive again, its sha256 declared up front: the host knows the image before the upload ends."""
    data = rootfs_tar(3, uuid.uuid4().hex)
    sha = hashlib.sha256(data).hexdigest()
    image, label = arriving.names("duplicate")
    first = await arriving.create(len(data), sha256=sha)
    await arriving.send(first, data, 0, len(data))
    events = await arriving.wait_events(await arriving.start_import(first, image, label), ended)
    assert events[-1]["state"] == "succeeded", events[-1]["error"]
    again = await arriving.create(len(data), sha256=sha)
    await arriving.send(again, data, 0, PIECE)  # the rest never comes
    events = await arriving.wait_events(await arriving.start_import(again, image, label), ended)
    assert events[-1]["state"] == "succeeded" and events[-1]["image"]["already_present"] is True, events[-1]
    async with arriving.http() as http:
        assert (await http.get(f"/api/uploads/{again}")).json()["complete"] is False
