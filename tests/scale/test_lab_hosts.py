"""Several lab hosts: two importers, each with its own private Docker engine (own data root and socket).

Host B's engine keeps its data root on a small tmpfs, so a disk that fills up on that host only can
be produced for real, in the middle of an import.
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import docker
import pytest

from importer.tests.service_process import ImporterProcess, remove_images
from importer.tests.service_support import SECRET, TOKEN
from tests.scale.cluster import Watcher, assert_contiguous
from tests.scale.conftest import random_rootfs
from tests.support import engine as engines
from tests.support.images import image_present

pytestmark = [pytest.mark.slow, pytest.mark.engine]

B_DISK = 256 << 20  # the parallel test's 128 MiB image plus the importer's 64 MiB headroom fit


class LabHost:
    def __init__(self, name: str, base: Path, tmpfs_bytes: int | None = None):
        self.name = name
        # Short: dockerd's and containerd's unix sockets live under .run/engines/NAME (108-byte path limit).
        self.engine_name = "s" + name.replace("lab-", "").replace("-", "")
        self.base = base
        self.tmpfs_bytes = tmpfs_bytes
        self.data_root = engines.engine_script._paths(self.engine_name)["data"]
        self.mounted = False
        self.docker_host: str | None = None
        self.importer: ImporterProcess | None = None
        self.client: docker.DockerClient | None = None

    def start_engine(self) -> None:
        if self.tmpfs_bytes:
            self.data_root.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.tmpfs_bytes}", "ferry-scale", str(self.data_root)],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs for the small-disk host: {done.stderr.strip()}")
            self.mounted = True
        self.docker_host, started = engines.up(self.engine_name, use_existing=False)
        assert started, f"engine {self.engine_name} was already running"
        self.client = docker.DockerClient(base_url=self.docker_host)

    def start_importer(self, cluster) -> None:
        self.importer = ImporterProcess(
            self.base / self.name,
            self.docker_host,
            name=self.name,
            allowed_url_prefixes=cluster.url + "/api/uploads/",
            callback_url_prefixes=cluster.url + "/api/callbacks/",
        ).start()

    def fill_disk(self) -> int:
        """Take every free byte of the engine's data root, as a runaway log would: the import's next writes fail."""
        block = b"\0" * (1 << 20)
        written = 0
        with open(self.data_root / "filler", "wb", buffering=0) as handle:
            try:
                while True:
                    written += handle.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        return written

    def stop(self) -> None:
        if self.importer is not None:
            self.importer.close()
        if self.client is not None:
            self.client.close()
        engines.down(self.engine_name)
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.data_root)], check=False)
        shutil.rmtree(self.data_root.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def labs(scale_cluster, tmp_path_factory):
    """Two lab hosts registered with the two-replica cluster; their engines are stopped at the end."""
    suffix = uuid.uuid4().hex[:4]
    base = tmp_path_factory.mktemp("labs")
    hosts = [LabHost(f"lab-a-{suffix}", base), LabHost(f"lab-b-{suffix}", base, tmpfs_bytes=B_DISK)]
    try:
        for host in hosts:
            host.start_engine()
        scale_cluster.wait_ready()
        for host in hosts:
            host.start_importer(scale_cluster)
        asyncio.run(_register_all(scale_cluster, hosts))
        yield hosts
    finally:
        for host in hosts:
            host.stop()


async def _register_all(cluster, hosts) -> None:
    async with cluster.client() as http:
        for host in hosts:
            response = await http.post(
                "/api/hosts",
                json={"name": host.name, "url": host.importer.base_url, "token": TOKEN, "webhook_secret": SECRET},
            )
            assert response.status_code == 201, response.text


async def _import(cluster, labs, archive: Path, label: str) -> tuple[str, dict[str, str], Watcher]:
    operator = await cluster.token("operator")
    upload_id = await cluster.upload_file(archive, operator)
    image = f"ferry-test/scale-lab-{label}:1"
    async with cluster.client(operator) as http:
        created = await http.post(
            "/api/imports",
            json={
                "upload_id": upload_id,
                "hosts": [h.name for h in labs],
                "image": image,
                "format": "import",
                "changes": [f"LABEL ferry.test={label}"],
            },
        )
    assert created.status_code == 202, created.text
    jobs = {job["host"]: job["id"] for job in created.json()["jobs"]}
    watcher = await Watcher(cluster.url, await cluster.token("viewer")).connect()
    for job_id in jobs.values():
        await watcher.subscribe(job_id)
    return image, jobs, watcher


def _timeline(watcher: Watcher, job_id: str) -> tuple[datetime, datetime]:
    """When the backend received the job's first byte-moving event and its last event."""
    events = watcher.of(job_id)
    moving = next(meta for _, data, meta in events if data["bytes_done"] > 0)
    return datetime.fromisoformat(moving["timestamp"]), datetime.fromisoformat(events[-1][2]["timestamp"])


async def test_one_upload_imports_onto_two_hosts_in_parallel_with_their_own_progress(
    cluster, labs, tmp_path, docker_host
):
    label = uuid.uuid4().hex[:12]
    # 40 MiB took 0.43 s a host here and the second host started 0.09 s after the first: too close.
    archive = random_rootfs(tmp_path / "parallel.tar", 128 << 20, files=16)
    image, jobs, watcher = await _import(cluster, labs, archive, label)
    shared = docker.DockerClient(base_url=docker_host)
    try:
        await watcher.wait_for(lambda: all(watcher.finished(j) for j in jobs.values()), 120, "both jobs to finish")
        for host in labs:
            job_id = jobs[host.name]
            events = watcher.of(job_id)
            assert [n for n, _, _ in events][-1] == "import.completed", events[-1]
            assert {d["host"] for _, d, _ in events} == {host.name}
            assert_contiguous(watcher.seqs(job_id))
            done = [d["bytes_done"] for _, d, _ in events]
            assert done == sorted(done) and done[-1] == archive.stat().st_size
            assert image_present(host.client, image), f"{image} missing on {host.name}"
        assert len(set(jobs.values())) == 2
        # In parallel: each job was still running when the other one had already started.
        (a_start, a_end), (b_start, b_end) = (_timeline(watcher, jobs[h.name]) for h in labs)
        assert a_start < b_end and b_start < a_end
        assert not image_present(shared, image), "the image must land on the lab hosts' engines only"
    finally:
        await watcher.close()
        for host in labs:
            remove_images(host.client, [image], label)
        shared.close()


@pytest.mark.fault
async def test_a_disk_filling_up_on_one_host_does_not_disturb_the_other(cluster, labs, tmp_path):
    host_a, host_b = labs
    label = uuid.uuid4().hex[:12]
    # The disk must fill before the import ends: filling ran about 13 times faster per byte than importing.
    archive = random_rootfs(tmp_path / "big.tar", 96 << 20, files=16)
    image, jobs, watcher = await _import(cluster, labs, archive, label)
    try:

        def b_moving():
            return any(d["bytes_done"] > 0 and d["state"] == "running" for _, d, _ in watcher.of(jobs[host_b.name]))

        await watcher.wait_for(b_moving, 60, f"{host_b.name} to stream bytes")
        await asyncio.to_thread(host_b.fill_disk)
        await watcher.wait_for(lambda: all(watcher.finished(j) for j in jobs.values()), 180, "both jobs to finish")

        b_events = watcher.of(jobs[host_b.name])
        assert b_events[-1][0] == "import.failed", b_events[-1]
        error = b_events[-1][1]["error"]
        assert error["code"] == "insufficient_disk", error
        assert "space" in (error["message"] + " " + (error.get("detail") or "")).lower(), error
        assert not image_present(host_b.client, image), "nothing half-imported may stay tagged on the full host"
        assert host_b.importer.client.get("/healthz").status_code == 200

        a_events = watcher.of(jobs[host_a.name])
        assert a_events[-1][0] == "import.completed", a_events[-1]
        assert_contiguous(watcher.seqs(jobs[host_a.name]))
        assert image_present(host_a.client, image)
        assert_contiguous(watcher.seqs(jobs[host_b.name]))
    finally:
        await watcher.close()
        (host_b.data_root / "filler").unlink(missing_ok=True)
        for host in labs:
            remove_images(host.client, [image], label)
